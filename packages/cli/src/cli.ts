import { initCommand } from './commands/init.js';
import { keygenCommand } from './commands/keygen.js';
import { promoteCommand, rollbackCommand } from './commands/channel.js';
import { publishCommand } from './commands/publish.js';
import { rolloutCommand } from './commands/rollout.js';
import { quantizeCommand } from './commands/quantize.js';
import { serveCommand } from './commands/serve.js';
import { abCommand, shadowCommand } from './commands/strategies.js';
import { timestampCommand } from './commands/timestamp.js';
import { verifyCommand } from './commands/verify.js';

/** Where a command writes: stdout for results, stderr for progress and errors. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** The terminal for progress bars; bars are drawn only when it is a TTY. */
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Stops long-running commands (`serve`); without it they stop on SIGINT or SIGTERM. */
  signal?: AbortSignal;
  /** Environment variables (`serve` reads its tokens there); `process.env` when absent. */
  env?: Record<string, string | undefined>;
}

/** A subcommand of `outpost`. */
export interface Command {
  /** The word after `outpost`. */
  name: string;
  /** One line for `outpost --help`. */
  summary: string;
  /** Full usage text. */
  usage: string;
  /** Runs with the arguments after the name; resolves to the exit code. */
  run: (args: string[], io: Io) => Promise<number>;
}

/** Thrown for a bad command line: printed with the usage, exit code 2. */
export class UsageError extends Error {
  /** Stable error code. */
  readonly code = 'USAGE';
  override readonly name = 'UsageError';
}

/** Every subcommand, in the order `outpost --help` lists them. */
export const COMMANDS: readonly Command[] = [
  quantizeCommand,
  keygenCommand,
  initCommand,
  publishCommand,
  promoteCommand,
  rollbackCommand,
  rolloutCommand,
  shadowCommand,
  abCommand,
  timestampCommand,
  verifyCommand,
  serveCommand,
];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: outpost <command> [options]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'outpost <command> --help shows the command’s options.',
  ].join('\n');
}

/** Runs the CLI on `argv` (without node and the script); resolves to the exit code. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    io.out(help());
    return name ? 0 : 2;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.err(`outpost: unknown command ${name}\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(command.usage);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`outpost ${name}: ${e.message}\n\n${command.usage}`);
      return 2;
    }
    const err = e as { name?: string; code?: string; message?: string };
    io.err(`outpost ${name}: ${err.code ? `[${err.code}] ` : ''}${err.message ?? String(e)}`);
    return 1;
  }
}
