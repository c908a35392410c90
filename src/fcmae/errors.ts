/** Typed errors of the FCMAE module (bad masks, inputs, options). */
import { ConvNeXtError } from '../errors';

/** An FCMAE input, mask or option is invalid; the message names the thing and the problem. */
export class FcmaeError extends ConvNeXtError {}
