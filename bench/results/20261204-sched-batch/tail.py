# tail.py REPORT LABEL: one line from a loadgen --json report: enqueue->processed
# and tx latency, CPU µs per transaction of each process and of the generator.
import json, sys

d = json.load(open(sys.argv[1]))
e, t = d['latency_ms']['enqueue_to_processed'], d['latency_ms']['tx']
c, n = d['cpu'], d['tx_accepted']
print(sys.argv[2], 'e2e p50 %.2f p99 %.2f max %.1f | tx p50 %.2f p99 %.2f |' % (e['p50_ms'], e['p99_ms'], e['max_ms'], t['p50_ms'], t['p99_ms']),
      ' '.join('%s=%d' % (k[:5], round(v / n * 1e6)) for k, v in c['processes_cpu_s'].items()),
      'gen=%d busy %.1f/%.1f' % (round(c['generator_cpu_s'] / n * 1e6), c['machine_busy_cpu_s'], c['machine_available_cpu_s']), flush=True)
