// Process signals: SIGTERM (the container platform) and SIGINT (a terminal) start a graceful stop; a second signal
// exits at once, for an operator who does not want to wait for the grace period.
import type { Logger } from './log.ts';

export function stopOnSignals(shutdown: () => Promise<void>, log: Logger): void {
  let received = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    received++;
    if (received > 1) {
      log.warn('second signal, exiting without waiting', { signal });
      process.exit(1);
    }
    log.info('signal received, stopping gracefully', { signal });
    shutdown().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error('graceful stop failed', { error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
