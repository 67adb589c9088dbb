// Confirmation before a destructive tool acts: the policy (CONTAINARIUM_CONFIRM), the question's
// typed answer, and the sentences a call answers when nothing was done. The flow itself, which
// asks through MCP elicitation, is in server.ts's tools/call path.
export const CONFIRM_POLICIES = ['auto', 'always', 'never'] as const;
export type ConfirmPolicy = (typeof CONFIRM_POLICIES)[number];

/** The policy in a few words, as doctor shows it. */
export const describeConfirm = (policy: ConfirmPolicy): string =>
  ({
    auto: 'auto (destructive tools ask the user when the client can)',
    always: 'always (destructive tools ask the user, and refuse when the client cannot ask)',
    never: 'never (destructive tools do not ask)',
  })[policy];

/** The question asked before a destructive call, read from fresh state. */
export type Question = {
  /** What the person reads: the target and what would be lost. */
  message: string;
  /** The exact text the person types to confirm (the username). */
  typed: string;
  /** Who the target is now (its name and creation time): read again after the answer. */
  identity: string;
  /** Users the question found with no container: a confirmed bulk delete leaves them be. */
  absent?: readonly string[];
};

/** The key of the one input request a confirmation makes, and the field the person types into. */
export const CONFIRM_KEY = 'confirm';
export const TYPED_FIELD = 'username';

/** The form the person fills in: one string, the username typed out. */
export const confirmSchema = (typed: string) => ({
  type: 'object' as const,
  properties: {
    [TYPED_FIELD]: {
      type: 'string' as const,
      title: 'Username',
      description: `Type "${typed}" to confirm`,
    },
  },
  required: [TYPED_FIELD],
});

/** Whether an accepted answer confirms: the typed text matches exactly. */
export const confirms = (content: Record<string, unknown> | undefined, typed: string): boolean =>
  content?.[TYPED_FIELD] === typed;

/** The sentences for a call that did nothing, each ending with what to do next. */
export const UNCONFIRMED = {
  declined: (action: string) =>
    `The user declined to ${action}, so nothing was changed. Do not retry unless the user asks again.`,
  cancelled: (action: string) =>
    `The user cancelled the confirmation to ${action}, so nothing was changed. Ask the user before trying again.`,
  mismatch: (action: string, typed: string) =>
    `The confirmation to ${action} did not match: the user had to type "${typed}" exactly, so nothing was changed. Ask the user whether to try again.`,
  changed: (action: string) =>
    `The target changed since the user was asked (it was deleted and created again, or replaced), so nothing was done to ${action}. Call the tool again to ask about what is there now.`,
  otherCall: (action: string) =>
    `The confirmation the user gave was for other arguments, so nothing was done to ${action}. Call the tool again to ask the user about these arguments.`,
  cannotAsk: (action: string) =>
    `This server is set to ask the user before it can ${action} (CONTAINARIUM_CONFIRM=always), but this MCP client cannot ask (it did not declare elicitation), so nothing was changed. Use a client that supports elicitation, or ask the user to set CONTAINARIUM_CONFIRM=auto in this server's entry of the MCP client's config.`,
} as const;
