/**
 * Public face of sztp-client discovery: where the agent learns which bootstrap
 * servers to try (RFC 8572 §4: DHCP options 143/136, DNS, static configuration).
 */
export {
  type DecodedServerList,
  decodeBootstrapServerList,
  encodeBootstrapServerList,
  type OptionForm,
} from './bootstrap-server-list.js';
export {
  type DiscoveredServer,
  type DiscoveryOptions,
  type DiscoveryResult,
  type DiscoverySource,
  discoverBootstrapServers,
} from './discover.js';
export {
  type DnsBootstrapData,
  type DnsDiscoveryOptions,
  type DnsDiscoveryResult,
  type DnsResolver,
  type DnsServer,
  discoverDns,
  parseSztpTxt,
} from './dns.js';
export {
  DISCOVERY_ERROR_CODES,
  DISCOVERY_WARNING_CODES,
  DiscoveryError,
  type DiscoveryErrorCode,
  type DiscoveryWarning,
  type DiscoveryWarningCode,
} from './errors.js';
export {
  DEFAULT_LEASE_LOCATIONS,
  detectLeaseFormat,
  findDefaultLeaseFiles,
  type LeaseFormat,
  type LeaseUris,
  type ParsedLeaseFile,
  parseLeaseText,
  readLeaseFile,
} from './lease-file.js';
export {
  concatenateOptionInstances,
  DHCPV4_SZTP_REDIRECT,
  DHCPV6_SZTP_REDIRECT,
  extractDhcpv4Option,
} from './rfc3396.js';
export { checkBootstrapServerUri, checkHttpsUrl, type UriCheck } from './server-uri.js';
export { parseStaticUrls } from './static-urls.js';
