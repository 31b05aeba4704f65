/** Public face of `sztp-server/`: the device listener and the images listener. */
export { buildDeviceServer, type DeviceServerOptions, type DeviceTls } from './device-server.js';
export { buildImagesServer, type ImagesServerOptions } from './images-server.js';
