// Types of scripts/bootstrap.mjs (plain JavaScript: it runs before any install) for the TypeScript that imports it.
export declare const DEBIAN_CHROMIUM: string;
export declare function chromiumPath(env?: NodeJS.ProcessEnv): string;
export declare function missingChromiumMessage(path: string, env?: NodeJS.ProcessEnv): string;
export declare function browserPlan(context: {
  env: NodeJS.ProcessEnv;
  exists: (path: string) => boolean;
  isRoot: boolean;
  hasAptGet: boolean;
}): 'present' | 'install' | 'missing';
export declare const DEBIAN_PGBOUNCER: string;
export declare const MISSING_PGBOUNCER_MESSAGE: string;
export declare function pgbouncerPath(exists?: (path: string) => boolean, hasCommand?: (command: string) => boolean): string | undefined;
export declare function pgbouncerPlan(context: { present: boolean; isRoot: boolean; hasAptGet: boolean }): 'present' | 'install' | 'missing';
