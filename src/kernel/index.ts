// kernel: the kernel side seen from TypeScript — loads and attaches the BPF programs through the addon and hands over ring-buffer batches.

export { KernelSensor, SensorStartError, type KernelCounters, type KernelSensorOptions } from './sensor';
