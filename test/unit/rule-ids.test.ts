import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { RULES } from '../../src/detect/catalog';

const TYPES = path.resolve(__dirname, '../../src/detect/types');

/** Type-checks one small file that makes a Finding with `ruleId`; returns tsc's messages. */
function check(ruleId: string): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctrwatch-ruleid-'));
  try {
    const file = path.join(dir, 'f.ts');
    fs.writeFileSync(
      file,
      `import type { Finding } from ${JSON.stringify(TYPES)};\nexport const f: Finding = { ruleId: ${JSON.stringify(ruleId)}, severity: 'LOW', message: '' };\n`,
    );
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: [],
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
    });
    return ts.getPreEmitDiagnostics(program, program.getSourceFile(file)).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('rule ids', () => {
  it('are unique in the catalogue', () => {
    expect(new Set(RULES.map((r) => r.id)).size).toBe(RULES.length);
  });

  it('are a typed union: a catalogued id compiles, a misspelt one does not', () => {
    expect(check('escape.setns-host')).toEqual([]);
    const errs = check('escape.setns-hots');
    expect(errs.join('\n')).toMatch(/not assignable to type/);
  }, 60_000);
});
