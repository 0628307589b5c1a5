/**
 * stratovirt: a KVM virtual machine monitor that speaks StratoVirt's command line and QMP.
 * Entry point: parse the command line, build the machine, run it.
 */
import { ConfigError, helpText, parseCommandLine, VmConfig } from "./src/config/mod.ts";
import { VERSION } from "./src/version.ts";
import { initLogger, levelFromEnv, log, type LoggerSettings } from "./src/util/logger.ts";
import { microvmSpecOf } from "./src/machine/from_config.ts";
import { EXIT_ERROR, runMicrovm } from "./src/machine/microvm.ts";
import { restoreTerminal } from "./src/chardev/terminal.ts";
import { MicrovmQmpMachine } from "./src/machine/qmp_machine.ts";
import type { QmpServer } from "./src/qmp/server.ts";
import { DaemonReporter, startDaemon } from "./src/machine/daemonize.ts";

/** Set in a process started by -daemonize: where its start-up result goes. */
const daemon = DaemonReporter.fromEnv();

/** A fatal error before or around the VM: one line on stderr, exit 1. */
function fail(message: string): number {
  restoreTerminal();
  console.error(`stratovirt: ${message}`);
  // A daemon's stderr is /dev/null: the process that started it prints the message instead.
  void daemon?.failed(message);
  return EXIT_ERROR;
}

function loggerOf(config: VmConfig): LoggerSettings {
  const l = config.runtime.logging;
  return {
    target: l.enabled ? (l.file ?? "") : null,
    level: levelFromEnv(Deno.env.get("STRATOVIRT_LOG_LEVEL")),
  };
}

async function runVm(config: VmConfig): Promise<number> {
  const logSettings = loggerOf(config);
  try {
    initLogger(logSettings);
  } catch (e) {
    return fail(
      `-D ${config.runtime.logging.file}: cannot open the log file: ${(e as Error).message}`,
    );
  }
  for (const warning of config.warnings) log.warn(warning);
  if (config.machine.accel === "test") {
    // Loaded only when asked for: it pulls in node:buffer, which costs every start ~5 ms.
    const { runTestMachine } = await import("./src/qtest/test_machine.ts");
    void daemon?.ready();
    return await runTestMachine(config);
  }

  let spec;
  try {
    spec = microvmSpecOf(config, logSettings);
  } catch (e) {
    return fail((e as Error).message);
  }
  const pidfile = config.runtime.pidfile;
  if (pidfile) {
    try {
      Deno.writeTextFileSync(pidfile, `${Deno.pid}\n`);
    } catch (e) {
      return fail(`-pidfile ${pidfile}: cannot write it: ${(e as Error).message}`);
    }
  }
  const machine = new MicrovmQmpMachine(config, spec);
  let qmp: QmpServer | null = null;
  try {
    // QMP listens before the VM is built, so a listener that cannot be made stops the start.
    if (config.qmp.length > 0) {
      const { qmpAddress, QmpServer } = await import("./src/qmp/server.ts");
      qmp = new QmpServer(machine, { log: (m) => log.info(m) });
      machine.attachServer(qmp);
      for (const address of config.qmp) qmp.listen(qmpAddress(address));
    }
    return await runMicrovm(spec, {
      startPaused: config.runtime.freeze,
      noShutdown: config.runtime.noShutdown,
      onRunning: (vm) => {
        machine.attach(vm);
        void daemon?.ready();
      },
      onEvent: (event) => machine.forward(event),
    });
  } catch (e) {
    return fail((e as Error).message);
  } finally {
    // Clients get what was queued for them (SHUTDOWN), then the socket files go.
    await qmp?.close();
    machine.closeFds();
    if (pidfile) {
      try {
        Deno.removeSync(pidfile);
      } catch { /* already gone */ }
    }
  }
}

async function main(args: string[]): Promise<number> {
  let config: VmConfig;
  try {
    config = parseCommandLine(args);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(`stratovirt: ${e.message}`);
    return 1;
  }
  if (config.action === "help") {
    console.log(helpText());
    return 0;
  }
  if (config.action === "version") {
    console.log(`StratoVirt ${VERSION}`);
    return 0;
  }
  // The foreground half of -daemonize; the daemon itself (started with `daemon` set) runs the VM.
  if (config.runtime.daemonize && !daemon) {
    return await startDaemon(args, (message) => console.error(`stratovirt: ${message}`));
  }
  const status = await runVm(config);
  await daemon?.finish(status);
  return status;
}

// Deno.exit even on success: a pending stdin read would otherwise keep the process alive.
if (import.meta.main) {
  // `deno task run -- ARGS` hands the "--" through; StratoVirt's command line has no use for it.
  const args = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;
  Deno.exit(await main(args));
}
