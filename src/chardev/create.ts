/** Builds a chardev backend from its parsed `-chardev` configuration. */
import { type Chardev, type ChardevConfig, ChardevError, type ChardevLog } from "./chardev.ts";
import { logToStderr } from "./chardev.ts";
import { FileChardev } from "./file.ts";
import { PtyChardev } from "./pty.ts";
import { SocketChardev, type SocketOptions } from "./socket.ts";
import { StdioChardev, type StdioOptions } from "./stdio.ts";

export interface CreateChardevOptions {
  /** Where backends report (pty path, socket clients); stderr by default. */
  log?: ChardevLog;
  stdio?: StdioOptions;
  socket?: SocketOptions;
}

/** Opens the backend `config` describes; a ChardevError names the chardev and what is wrong. */
export function createChardev(config: ChardevConfig, options: CreateChardevOptions = {}): Chardev {
  const log = options.log ?? logToStderr;
  const { id } = config;
  switch (config.backend) {
    case "stdio":
      return new StdioChardev(id, log, options.stdio);
    case "pty":
      return new PtyChardev(id, log);
    case "file":
      if (!config.path) throw new ChardevError(`chardev '${id}': file backend needs 'path'`);
      return new FileChardev(id, config.path, log);
    case "socket":
      if (!config.path) throw new ChardevError(`chardev '${id}': socket backend needs 'path'`);
      if (!config.server || !config.nowait) {
        throw new ChardevError(
          `Argument 'server' and 'nowait' are both required for chardev '${id}'`,
        );
      }
      return new SocketChardev(id, config.path, log, options.socket);
    default:
      throw new ChardevError(
        `chardev '${id}': unknown backend '${(config as { backend: string }).backend}'` +
          " (expected stdio, pty, socket or file)",
      );
  }
}
