/**
 * The one import of `@peculiar/x509`. It resolves its crypto provider through
 * tsyringe, which needs the Reflect metadata polyfill loaded first; ES module
 * evaluation order guarantees `reflect-metadata` runs before the library.
 */
import 'reflect-metadata';

export {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
} from '@peculiar/x509';
