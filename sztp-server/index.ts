/** Public face of `sztp-server/`: the device listener, the bootstrap logic, the images listener. */
export {
  BootstrapService,
  type BootstrapServiceOptions,
  type DeviceIdentity,
  type ImageBase,
  type RequestCredentials,
  type RevokedFingerprints,
  type UnknownDevicePolicy,
} from './bootstrap-rpc.js';
export { AUTH_THROTTLE_DEFAULTS, type AuthThrottleOptions } from './auth-throttle.js';
export type { BootstrapContact, DeviceLifecycle, ProgressReport } from './device-lifecycle.js';
export { DeviceRowCache, type DeviceRowCacheOptions, type DeviceWithProfile } from './device-rows.js';
export {
  buildConveyedInformation,
  colonHex,
  type ProfileSpec,
  type ResolvedImage,
} from './conveyed-builder.js';
export {
  buildDeviceServer,
  type DeviceServerOptions,
  type DeviceTls,
  setDeviceTls,
} from './device-server.js';
export { SZTP_ERRORS, SztpError, type SztpErrorCode } from './errors.js';
export { buildImagesServer, type ImagesServerOptions } from './images-server.js';
export {
  type ActiveTraceparent,
  type ImageTokenTraces,
  linkToJobTrace,
  parseTraceparent,
  rpcTraceParent,
} from './job-trace.js';
export { PROGRESS_TYPES, type ProgressType } from './restconf-codec.js';
export type { ServerPki } from './server-pki.js';
export { type SigningMaterial, signingMaterial } from './signing-material.js';
export { ImageCatalog, type ImageCatalogOptions, type ServedImage } from './image-catalog.js';
export { type ImageFetch, ImageFetchLog, type ImageFetchLogOptions } from './image-fetch-log.js';
export {
  IMAGE_NAME,
  IMAGE_TOKEN,
  type ImageServingOptions,
  imageRequest,
  imageServing,
} from './image-serving.js';
export {
  type ConveyedImage,
  conveyedImageResolver,
  type ImageBaseOptions,
  type ImageBaseResolver,
  type ImageBaseUrls,
  type ImageVerification,
  type RequestOrigin,
  imageBaseResolver,
  imageDownloadUris,
  imageUrl,
  imageVerification,
  urlHost,
} from './image-urls.js';
