// Sample public keys shared by tests: a fixture module, so no test file imports another one.

export const ED25519 =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq5sFq2wA0hB3xG8cW1Wq2lXzQ2l0cO0z9d3vP6e7Gk alice@laptop';
