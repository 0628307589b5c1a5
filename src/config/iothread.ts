/** `-object iothread,id=`: an extra thread devices can run their queues on. */
import { Props } from "./props.ts";

export interface IothreadConfig {
  readonly id: string;
}

export function parseIothread(p: Props): IothreadConfig {
  const id = p.required("id");
  p.finish("iothread");
  return { id };
}
