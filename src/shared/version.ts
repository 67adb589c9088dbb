// The version baked into the binaries at build time (scripts/build.ts defines it); package.json when run from source.
import pkg from '../../package.json' with { type: 'json' };

declare const BUILD_VERSION: string | undefined;

export const VERSION: string = typeof BUILD_VERSION === 'string' ? BUILD_VERSION : pkg.version;
