import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { importCycles, importGraph } from '../support/import-graph';

const ROOT = path.resolve(__dirname, '../..');

describe('imports of src/', () => {
  it('finds a cycle made on purpose in a fixture, type-only links included', () => {
    const g = importGraph(path.join(ROOT, 'test/fixtures/import-cycle'));
    expect(g.get('sub/b.ts')).toEqual(['c.ts']);
    expect(importCycles(g)).toEqual([['a.ts', 'c.ts', 'sub/b.ts']]);
  });

  it('has no import cycle', () => {
    const g = importGraph(path.join(ROOT, 'src'));
    expect(g.size).toBeGreaterThan(50);
    expect(importCycles(g)).toEqual([]);
  });

  it('src/ and test/ never import bench/ (the bench may import test/support, not the other way round)', () => {
    for (const dir of ['src', 'test']) {
      const g = importGraph(path.join(ROOT, dir));
      const into = [...g].flatMap(([f, deps]) => deps.filter((d) => d.startsWith('../bench/')).map((d) => `${dir}/${f} -> ${d}`));
      expect(into).toEqual([]);
    }
  });
});
