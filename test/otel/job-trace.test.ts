/** sztp-server/job-trace.ts: W3C traceparent parsing and the lookup hook's failure modes. */
import { trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { linkToJobTrace, parseTraceparent, rpcTraceParent } from '../../sztp-server/index.js';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('parseTraceparent', () => {
  it('reads a version-00 traceparent as a remote, sampled span context', () => {
    expect(parseTraceparent(TP)).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
      isRemote: true,
    });
  });
  it('refuses other versions, upper case, all-zero ids and wrong lengths', () => {
    for (const bad of [
      undefined,
      '',
      TP.replace(/^00/, '01'),
      TP.toUpperCase(),
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`,
      `${TP}0`,
      'x'.repeat(10_000),
    ])
      expect(parseTraceparent(bad), String(bad).slice(0, 40)).toBeUndefined();
  });
});

describe('linkToJobTrace', () => {
  const span = trace.wrapSpanContext({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 });
  it('returns the job traceparent for a serial with an active job', () => {
    expect(linkToJobTrace((s) => (s === 'DEV-1' ? TP : undefined), 'DEV-1', span)).toBe(TP);
    expect(linkToJobTrace((s) => (s === 'DEV-1' ? TP : undefined), 'DEV-9', span)).toBeUndefined();
  });
  it('never fails the device: no hook, a throwing hook or a malformed value give no header', () => {
    expect(linkToJobTrace(undefined, 'DEV-1', span)).toBeUndefined();
    expect(
      linkToJobTrace(
        () => {
          throw new Error('db down');
        },
        'DEV-1',
        span,
      ),
    ).toBeUndefined();
    expect(linkToJobTrace(() => 'garbage', 'DEV-1', span)).toBeUndefined();
  });
});

describe('rpcTraceParent', () => {
  const job = (s: string) => (s === 'DEV-1' ? TP : undefined);
  const sameTrace = '00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01';
  const foreign = '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-2222222222222222-01';
  const parentOf = (r: ReturnType<typeof rpcTraceParent>) => trace.getSpanContext(r.parent);

  it('a device with a job: its own span when in the job trace, else the job (the foreign one linked)', () => {
    const own = rpcTraceParent(job, 'DEV-1', sameTrace);
    expect(own).toMatchObject({ handOver: TP, joined: true, links: [] });
    expect(parentOf(own)?.spanId).toBe('1111111111111111');
    const other = rpcTraceParent(job, 'DEV-1', foreign);
    expect(parentOf(other)?.spanId).toBe('00f067aa0ba902b7');
    expect(other.links.map((l) => l.context.spanId)).toEqual(['2222222222222222']);
    const none = rpcTraceParent(job, 'DEV-1', undefined);
    expect(parentOf(none)?.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
  });

  it('a device without a job: plain W3C propagation; a throwing or malformed hook only loses the join', () => {
    const plain = rpcTraceParent(job, 'DEV-9', foreign);
    expect(plain).toMatchObject({ joined: false, links: [] });
    expect(plain.handOver).toBeUndefined();
    expect(parentOf(plain)?.spanId).toBe('2222222222222222');
    expect(parentOf(rpcTraceParent(job, 'DEV-9', 'garbage'))).toBeUndefined();
    const broken = rpcTraceParent(
      () => {
        throw new Error('db down');
      },
      'DEV-1',
      undefined,
    );
    expect(broken.joined).toBe(false);
    expect(rpcTraceParent(() => 'garbage', 'DEV-1', undefined).handOver).toBeUndefined();
  });
});
