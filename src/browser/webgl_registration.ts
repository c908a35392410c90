/**
 * Registers tfjs-backend-webgl in the browser bundle. scripts/build-browser.js injects this file into
 * the bundle instead of backend.ts importing the package, so that the published browser types never
 * name @tensorflow/tfjs-backend-webgl (a devDependency: the bundle inlines it, consumers lack it).
 */
import '@tensorflow/tfjs-backend-webgl';
