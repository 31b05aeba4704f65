/** The typed operator-API client (the face other folders import). */
export {
  type ApiClient,
  type ApiClientOptions,
  ApiProblemError,
  ApiUnreachableError,
  createApiClient,
  ok,
  type Problem,
  type ProblemCode,
} from './client.js';
export type { components, operations, paths } from './schema.js';
