import pino from 'pino';
import { DecodeStage } from '../../src/decode/stage';
import { KernelSensor, type KernelSensorOptions } from '../../src/kernel/sensor';
import type { KernelRecord } from '../../src/decode/records';

/** A KernelSensor that collects every decoded record, for kernel tests. */
export class RecordingSensor {
  readonly records: KernelRecord[] = [];
  readonly sensor: KernelSensor;
  readonly decode: DecodeStage;

  constructor(opts: Partial<KernelSensorOptions> = {}) {
    const logger = pino({ level: 'warn' }, pino.destination(2));
    this.decode = new DecodeStage(logger, (b) => {
      this.records.push(...b.records);
    });
    this.sensor = new KernelSensor({ logger, ...opts }, this.decode.push);
    this.sensor.start();
  }

  /** Drains until `pred` finds a record or `ms` pass. */
  async waitFor<T extends KernelRecord>(pred: (r: KernelRecord) => r is T, ms?: number): Promise<T>;
  async waitFor(pred: (r: KernelRecord) => boolean, ms?: number): Promise<KernelRecord>;
  async waitFor(pred: (r: KernelRecord) => boolean, ms = 3000): Promise<KernelRecord> {
    const end = Date.now() + ms;
    for (;;) {
      this.sensor.drain();
      const r = this.records.find(pred);
      if (r) return r;
      if (Date.now() > end) throw new Error('record not seen in time');
      await new Promise((res) => setTimeout(res, 20));
    }
  }

  close(): void {
    this.sensor.close();
  }
}
