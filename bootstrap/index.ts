/** Public face of `bootstrap/`: the operator API and the lifecycle. */
export { buildOperatorApi, type OperatorApiOptions, type ReadinessCheck } from './operator-api.js';
