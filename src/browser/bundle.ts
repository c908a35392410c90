/**
 * The browser bundle's entry (scripts/build-browser.js): the library (index.ts) plus the WebGL
 * backend's registration. The import lives here, not in backend.ts, so that the published browser
 * types (rooted at index.d.ts) never name @tensorflow/tfjs-backend-webgl, a devDependency that the
 * bundle inlines and consumers do not install.
 */
export * from './index';
import '@tensorflow/tfjs-backend-webgl';
