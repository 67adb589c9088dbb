// Test harness: the Python SDK (mcp 2.x) client script, run with MCP_TEST_PYTHON.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { ROOT } from './stdio.ts';

/**
 * Runs test/mcp/clients/python_client.py in `mode` against `target` (a server command, or the URL
 * of mcp-server http) and returns the JSON line it prints of what it saw.
 */
export async function runPythonClient(
  mode: string,
  target: string[],
  env: Record<string, string>,
): Promise<Record<string, unknown>> {
  const python = process.env.MCP_TEST_PYTHON;
  if (!python || !existsSync(python)) {
    throw new Error(
      'MCP_TEST_PYTHON must name a Python that has the MCP SDK installed; set it up with: ' +
        'python3 -m venv node_modules/.cache/mcp-python && ' +
        'node_modules/.cache/mcp-python/bin/pip install -r test/mcp/clients/requirements.txt && ' +
        'export MCP_TEST_PYTHON=$PWD/node_modules/.cache/mcp-python/bin/python (.ci/run does this)',
    );
  }
  const proc = Bun.spawn(
    [python, resolve(ROOT, 'test/mcp/clients/python_client.py'), mode, ...target],
    {
      env,
      stdout: 'pipe',
      stderr: 'pipe',
    },
  );
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`the Python client failed (${code}):\n${stderr}`);
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}
