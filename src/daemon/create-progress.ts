// What the daemon knows about the creates it runs, by username, for GET /v1/containers/{username}:
// the step a create is at now, and how an async create ended (the message a sync create answers,
// or why it failed before Incus had the instance). In memory: a restart forgets it, as upstream's
// async tracker does; a failure with an instance is stored on the instance itself.

/** The steps of a create, in order, as GET shows them while it runs. */
export const PHASES = {
  creating: 'creating instance',
  starting: 'starting',
  network: 'waiting for network',
  packages: 'installing packages',
  user: 'adding user',
  keys: 'adding keys',
} as const;
export type Phase = (typeof PHASES)[keyof typeof PHASES];

export type CreateProgress = ReturnType<typeof createProgress>;

export function createProgress() {
  const phases = new Map<string, Phase>();
  const messages = new Map<string, string>();
  const failures = new Map<string, string>();
  return {
    /** The create of `username` has reached `phase`; a new create forgets the last one's end. */
    enter(username: string, phase: Phase) {
      if (!phases.has(username)) {
        messages.delete(username);
        failures.delete(username);
      }
      phases.set(username, phase);
    },
    /** The create of `username` ended; its message (success) or reason (failure) is kept. */
    end(username: string, outcome: { message: string } | { error: string } | undefined) {
      phases.delete(username);
      if (outcome && 'message' in outcome) messages.set(username, outcome.message);
      if (outcome && 'error' in outcome) failures.set(username, outcome.error);
    },
    /** The container is gone: nothing of its create is kept. */
    forget(username: string) {
      phases.delete(username);
      messages.delete(username);
      failures.delete(username);
    },
    phase: (username: string): Phase | '' => phases.get(username) ?? '',
    message: (username: string) => messages.get(username) ?? '',
    failure: (username: string) => failures.get(username) ?? '',
  };
}
