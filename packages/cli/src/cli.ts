import { quantizeCommand } from './commands/quantize.js';

/** Where a command writes: stdout for results, stderr for progress and errors. */
export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
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

/** Every subcommand. Later ones (keygen, publish, serve) are added here. */
export const COMMANDS: readonly Command[] = [quantizeCommand];

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
