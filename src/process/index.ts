// process: the process table — what the sensor knows of each process, from kernel records and, for the ones it did not see, from /proc.

export { ProcessTable, type Proc } from './table';
export { readProc } from './procfs';
export { sameStart } from './clock';
