/**
 * The operator API's route modules beyond the built-in ones, in one list that
 * `serve` listens with and `openapi` prints the document of — so the document
 * the generated client is made from is the one the service serves.
 */
import {
  type ApiRoutes,
  type BmcStore,
  bmcRoutes,
  deviceImportRoutes,
  type EventHub,
  type EventLog,
  eventRoutes,
  type ImageStore,
  type ImageUrls,
  imageRoutes,
  type JobRunner,
  jobRoutes,
  type RevokedIdevids,
  revokedIdevidRoutes,
  type SecretBox,
  webhookRoutes,
} from '../../bootstrap/index.js';

/** What the route modules are wired to. */
export interface OperatorRouteDeps {
  events: EventLog;
  hub: EventHub;
  secretBox: SecretBox;
  imageStore: ImageStore;
  bmcStore: BmcStore;
  /** The revoked IDevIDs (rows and this process's live set); absent while migrations are pending. */
  revokedIdevids?: RevokedIdevids | undefined;
  /** Absent while migrations are pending (`serve --no-migrate`): no job routes then. */
  runner?: JobRunner | undefined;
  imageUrls?: (
    name: string,
    origin: { host?: string | undefined; localAddress?: string | undefined },
  ) => ImageUrls;
  onWebhookChange?: () => void;
  onImageChange?: (name: string) => void;
}

/** The route modules `serve` registers on `/api/v1` (besides tokens, profiles, devices, owner, audit). */
export function operatorRoutes(d: OperatorRouteDeps): ApiRoutes[] {
  return [
    eventRoutes({ log: d.events, hub: d.hub }),
    webhookRoutes({ box: d.secretBox, ...(d.onWebhookChange ? { onChange: d.onWebhookChange } : {}) }),
    imageRoutes({
      store: d.imageStore,
      ...(d.imageUrls ? { urls: d.imageUrls } : {}),
      ...(d.onImageChange ? { onChange: d.onImageChange } : {}),
    }),
    bmcRoutes({ store: d.bmcStore }),
    deviceImportRoutes({ store: d.bmcStore }),
    ...(d.runner ? [jobRoutes({ runner: d.runner })] : []),
    ...(d.revokedIdevids ? [revokedIdevidRoutes({ revoked: d.revokedIdevids })] : []),
  ];
}
