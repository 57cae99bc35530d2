/** The server as the status bar shows it: health (polled, so a server that went away is noticed), live updates, queue. */
import { useEffect, useState } from 'react';
import { api } from '../../api.ts';
import { useObservable } from '../../runtime.ts';
import { useStudio } from '../studio-store.ts';

const HEALTH_POLL_MS = 10_000;

export function useServerStatus() {
  const studio = useStudio();
  const { health: healthState, models: modelsState } = studio;
  const { queueView, socketConnected } = studio.jobs;
  const [healthError, setHealthError] = useState<string | null>(null);
  useEffect(() => {
    const poll = () =>
      void api.health().then(
        (h) => {
          healthState.set(h);
          setHealthError(null);
        },
        (err: Error) => setHealthError(err.message),
      );
    const t = setInterval(poll, HEALTH_POLL_MS);
    void api.queue().then(
      (q) => queueView.set(q),
      () => undefined,
    );
    // Suggestions for Load Model; an older server without /api/models just offers "demo".
    void api.models().then(
      (m) => modelsState.set(m),
      () => undefined,
    );
    return () => clearInterval(t);
  }, [healthState, modelsState, queueView]);
  const connected = useObservable(socketConnected);
  // The live connection notices first: ask for the health at once, going away or coming back.
  useEffect(() => {
    if (connected === null) return;
    api.health().then(
      (h) => {
        healthState.set(h);
        setHealthError(null);
      },
      (err: Error) => setHealthError(err.message),
    );
  }, [connected, healthState]);
  return {
    health: useObservable(healthState),
    healthError,
    connected,
    queue: useObservable(queueView),
    models: useObservable(modelsState),
  };
}
