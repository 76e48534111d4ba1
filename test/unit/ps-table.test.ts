import { describe, expect, it } from 'vitest';
import { formatTable } from '../../src/ps';
import type { ContainerInput } from '../../src/proto/schema';

describe('ctrwatch ps table', () => {
  it('prints a creator’s control and direction characters as "?", never raw', () => {
    const evil: ContainerInput = {
      id: 'c'.repeat(64),
      runtime: 'RUNC',
      name: 'web\u001b]0;owned\u0007',
      image: 'busybox\u202egnp.',
      user: 'root\nfake row',
      initPid: 9,
      hostNamespaces: ['PID'],
    };
    const out = formatTable([evil]);
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(out.split('\n')).toEqual([
      'CONTAINER ID      RUNTIME  NAME           IMAGE         PID  USER           PRIVILEGED  HOST NS',
      'ccccccccccccccc…  RUNC     web?]0;owned?  busybox?gnp.  9    root?fake row  no          PID',
    ]);
  });
});
