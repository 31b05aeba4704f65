/** Public face of `sztp-server/`: the device listener and the images listener. */
export { buildDeviceServer, type DeviceServerOptions, type DeviceTls } from './device-server.js';
export { buildImagesServer, type ImagesServerOptions } from './images-server.js';
export { ImageCatalog, type ImageCatalogOptions, type ServedImage } from './image-catalog.js';
export { type ImageFetch, ImageFetchLog, type ImageFetchLogOptions } from './image-fetch-log.js';
export { IMAGE_NAME, type ImageServingOptions, imageServing } from './image-serving.js';
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
