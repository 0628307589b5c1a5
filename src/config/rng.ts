/** `-object rng-random,id=,filename=`: the host entropy source behind a virtio-rng device. */
import { Props } from "./props.ts";

export interface RngBackendConfig {
  readonly id: string;
  /** Host character device or file read for random bytes. */
  readonly filename: string;
}

export function parseRngBackend(p: Props): RngBackendConfig {
  const id = p.required("id");
  const filename = p.required("filename");
  p.finish("rng-random");
  return { id, filename };
}
