/**
 * The Grafana dashboards of dpu-ztp, as code (Grafana Foundation SDK builders).
 * `npm run dashboards` writes them to `otel/grafana/dashboards/*.json`; a test
 * holds the committed JSON equal to what this produces, and another runs every
 * Prometheus query of every panel against a real Prometheus scraping `serve`.
 *
 * Metric names come from `Metric` (conventions.ts) in their Prometheus form
 * (README, "GET /metrics"): `.` → `_`, counters `_total`, histograms
 * `_bucket`/`_sum`/`_count`. Metrics carry no device serial (one series per
 * device would not scale); the device drill-down reads the device's traces
 * from Tempo instead, where every job, step, Redfish call and RESTCONF call of
 * the device carries `dpu_ztp.device.serial`.
 *
 * Loaded only by the generator and tests: nothing at run time imports it, so
 * the SDK stays a devDependency.
 */
import {
  DashboardBuilder,
  DashboardCursorSync,
  DashboardLinkBuilder,
  DashboardLinkType,
  type DataSourceRef,
  DatasourceVariableBuilder,
  RowBuilder,
  TextBoxVariableBuilder,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { PanelBuilder as BarGaugePanel } from '@grafana/grafana-foundation-sdk/bargauge';
import { PromQueryFormat, DataqueryBuilder as PromQuery } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TablePanel } from '@grafana/grafana-foundation-sdk/table';
import { DataqueryBuilder as TempoQuery } from '@grafana/grafana-foundation-sdk/tempo';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';
import { Attr, Metric } from '../conventions.js';

/** Datasource variables: the dashboards pick whichever Prometheus and Tempo the Grafana has. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana datasource variable, not a JS template
const PROM: DataSourceRef = { type: 'prometheus', uid: '${prometheus}' };
// biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana datasource variable, not a JS template
const TEMPO: DataSourceRef = { type: 'tempo', uid: '${tempo}' };

/** A metric's name in the Prometheus scrape (README, "GET /metrics"). */
export function promName(otlpName: string, kind: 'counter' | 'gauge' | 'histogram'): string {
  const base = otlpName.replaceAll('.', '_');
  return kind === 'counter' ? `${base}_total` : kind === 'histogram' ? `${base}_bucket` : base;
}

const M = {
  devices: promName(Metric.devices, 'gauge'),
  started: promName(Metric.jobsStarted, 'counter'),
  finished: promName(Metric.jobsFinished, 'counter'),
  runDuration: promName(Metric.provisioningDuration, 'histogram'),
  stepDuration: promName(Metric.jobStepDuration, 'histogram'),
  stepCount: `${Metric.jobStepDuration.replaceAll('.', '_')}_count`,
  imageBytes: promName(Metric.imageBytesSent, 'counter'),
  imageActive: promName(Metric.imageActiveDownloads, 'gauge'),
  restconf: promName(Metric.restconfRequests, 'counter'),
  restconfDuration: promName(Metric.restconfDuration, 'histogram'),
  progress: promName(Metric.progressReports, 'counter'),
  redfishRequests: promName(Metric.redfishRequests, 'counter'),
  redfishErrors: promName(Metric.redfishErrors, 'counter'),
  redfishRetries: promName(Metric.redfishRetries, 'counter'),
  wbDepth: promName(Metric.writeBehindDepth, 'gauge'),
  wbDropped: promName(Metric.writeBehindDropped, 'counter'),
} as const;

function prom(expr: string, legend = '', refId = 'A'): PromQuery {
  return new PromQuery().datasource(PROM).expr(expr).legendFormat(legend).refId(refId);
}

function tempo(traceql: string, refId = 'A'): TempoQuery {
  return new TempoQuery().datasource(TEMPO).queryType('traceql').query(traceql).limit(50).refId(refId);
}

function datasourceVariables() {
  return [
    new DatasourceVariableBuilder('prometheus').label('Prometheus').type('prometheus'),
    new DatasourceVariableBuilder('tempo').label('Tempo').type('tempo'),
  ];
}

/** Fleet overview: what the fleet is doing, how fast, how well, and where it fails. */
export function fleetOverview() {
  const provision = 'kind="provision"';
  return new DashboardBuilder('dpu-ztp: fleet overview')
    .uid('dpu-ztp-fleet')
    .tags(['dpu-ztp'])
    .description(
      'Provisioning across the fleet: devices by state, runs, durations by step, failures, images, RESTCONF.',
    )
    .editable()
    .refresh('30s')
    .time({ from: 'now-6h', to: 'now' })
    .tooltip(DashboardCursorSync.Crosshair)
    .variables(datasourceVariables())
    .link(
      new DashboardLinkBuilder('Device drill-down')
        .type(DashboardLinkType.Link)
        .url('/d/dpu-ztp-device')
        .keepTime(true),
    )
    .withRow(new RowBuilder('Fleet'))
    .withPanel(
      new BarGaugePanel()
        .title('Devices by state')
        .description(
          'Registered devices by lifecycle state (one grouped count per scrape; max over replicas).',
        )
        .withTarget(prom(`max by (state) (${M.devices})`, '{{state}}').instant())
        .height(6)
        .span(8),
    )
    .withPanel(
      new TimeseriesPanel()
        .title('Provisioning rate')
        .description('Device runs of provisioning jobs started and finished, per minute.')
        .unit('short')
        .withTarget(prom(`sum(rate(${M.started}{${provision}}[$__rate_interval])) * 60`, 'started', 'A'))
        .withTarget(prom(`sum(rate(${M.finished}{${provision}}[$__rate_interval])) * 60`, 'finished', 'B'))
        .height(6)
        .span(8),
    )
    .withPanel(
      new StatPanel()
        .title('Success ratio')
        .description('Succeeded device runs over all finished ones in the time range (cancelled included).')
        .unit('percentunit')
        .decimals(1)
        .withTarget(
          prom(
            `sum(increase(${M.finished}{${provision},outcome="succeeded"}[$__range])) / sum(increase(${M.finished}{${provision}}[$__range]))`,
          ).instant(),
        )
        .height(6)
        .span(8),
    )
    .withRow(new RowBuilder('Durations and failures'))
    .withPanel(
      new TimeseriesPanel()
        .title('Step duration p50 / p95')
        .description('Duration of each provisioning step (done), 50th and 95th percentile.')
        .unit('s')
        .withTarget(
          prom(
            `histogram_quantile(0.5, sum by (le, step) (rate(${M.stepDuration}{${provision},outcome="done"}[$__rate_interval])))`,
            'p50 {{step}}',
            'A',
          ),
        )
        .withTarget(
          prom(
            `histogram_quantile(0.95, sum by (le, step) (rate(${M.stepDuration}{${provision},outcome="done"}[$__rate_interval])))`,
            'p95 {{step}}',
            'B',
          ),
        )
        .height(8)
        .span(12),
    )
    .withPanel(
      new TimeseriesPanel()
        .title('Provisioning duration p50 / p95 by strategy')
        .description('Whole device run (first step to done), by the strategy preflight chose.')
        .unit('s')
        .withTarget(
          prom(
            `histogram_quantile(0.5, sum by (le, strategy) (rate(${M.runDuration}{${provision},outcome="succeeded"}[$__rate_interval])))`,
            'p50 {{strategy}}',
            'A',
          ),
        )
        .withTarget(
          prom(
            `histogram_quantile(0.95, sum by (le, strategy) (rate(${M.runDuration}{${provision},outcome="succeeded"}[$__rate_interval])))`,
            'p95 {{strategy}}',
            'B',
          ),
        )
        .height(8)
        .span(12),
    )
    .withPanel(
      new TablePanel()
        .title('Failures by step and vendor profile')
        .description('Steps that ended failed in the time range, by step, vendor profile and strategy.')
        .withTarget(
          prom(
            `sum by (step, vendor_profile, strategy) (increase(${M.stepCount}{outcome="failed"}[$__range])) > 0`,
          )
            .instant()
            .format(PromQueryFormat.Table),
        )
        .height(8)
        .span(12),
    )
    .withPanel(
      new TimeseriesPanel()
        .title('Runs finished by outcome')
        .description(
          'Device runs finished per minute, by outcome (succeeded, failed, needs-attention, cancelled).',
        )
        .withTarget(
          prom(`sum by (outcome) (rate(${M.finished}{${provision}}[$__rate_interval])) * 60`, '{{outcome}}'),
        )
        .height(8)
        .span(12),
    )
    .withRow(new RowBuilder('Images, RESTCONF, Redfish'))
    .withPanel(
      new TimeseriesPanel()
        .title('Image throughput')
        .description('Image bytes served per second by listener (BMCs on http, devices on https).')
        .unit('Bps')
        .withTarget(prom(`sum by (listener) (rate(${M.imageBytes}[$__rate_interval]))`, '{{listener}}', 'A'))
        .withTarget(prom(`sum by (listener) (${M.imageActive})`, 'active {{listener}}', 'B'))
        .height(8)
        .span(8),
    )
    .withPanel(
      new TimeseriesPanel()
        .title('RESTCONF error rate')
        .description('Share of device RESTCONF requests answered 4xx/5xx, by RPC.')
        .unit('percentunit')
        .withTarget(
          prom(
            // `or … * 0`: an RPC without errors shows 0 %, not "no data".
            `(sum by (rpc) (rate(${M.restconf}{outcome!="ok"}[$__rate_interval])) or sum by (rpc) (rate(${M.restconf}[$__rate_interval])) * 0) / sum by (rpc) (rate(${M.restconf}[$__rate_interval]))`,
            '{{rpc}}',
          ),
        )
        .height(8)
        .span(8),
    )
    .withPanel(
      new TimeseriesPanel()
        .title('RESTCONF latency p95')
        .description('Device RESTCONF request duration, 95th percentile, by RPC.')
        .unit('s')
        .withTarget(
          prom(
            `histogram_quantile(0.95, sum by (le, rpc) (rate(${M.restconfDuration}[$__rate_interval])))`,
            '{{rpc}}',
          ),
        )
        .height(8)
        .span(8),
    )
    .withPanel(
      new TimeseriesPanel()
        .title('Progress reports by type')
        .description('sZTP progress reports accepted per minute, by progress type.')
        .withTarget(
          prom(`sum by (progress_type) (rate(${M.progress}[$__rate_interval])) * 60`, '{{progress_type}}'),
        )
        .height(8)
        .span(8),
    )
    .withPanel(
      new TimeseriesPanel()
        .title('Redfish requests, errors and retries by vendor profile')
        .description('Redfish HTTP exchanges, failed requests and retries per second.')
        .withTarget(
          prom(
            `sum by (vendor_profile) (rate(${M.redfishRequests}[$__rate_interval]))`,
            'requests {{vendor_profile}}',
            'A',
          ),
        )
        .withTarget(
          prom(
            `sum by (vendor_profile, error_type) (rate(${M.redfishErrors}[$__rate_interval]))`,
            'errors {{vendor_profile}} {{error_type}}',
            'B',
          ),
        )
        .withTarget(
          prom(
            `sum by (vendor_profile) (rate(${M.redfishRetries}[$__rate_interval]))`,
            'retries {{vendor_profile}}',
            'C',
          ),
        )
        .height(8)
        .span(8),
    )
    .withPanel(
      new TimeseriesPanel()
        .title('Write-behind queues')
        .description('Rows waiting for the database, and rows dropped per second, by queue.')
        .withTarget(prom(`sum by (queue) (${M.wbDepth})`, 'depth {{queue}}', 'A'))
        .withTarget(prom(`sum by (queue) (rate(${M.wbDropped}[$__rate_interval]))`, 'dropped {{queue}}', 'B'))
        .height(8)
        .span(8),
    )
    .build();
}

/** Device drill-down: one device's runs, steps and progress reports from its traces, and a link to them. */
export function deviceDrillDown() {
  const serial = `span.${Attr.deviceSerial} = "$device"`;
  const explore = (traceql: string) =>
    `/explore?left=${encodeURIComponent(
      JSON.stringify({
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana datasource variable
        datasource: '${tempo}',
        queries: [{ refId: 'A', queryType: 'traceql', query: traceql }],
      }),
    )}`;
  return new DashboardBuilder('dpu-ztp: device')
    .uid('dpu-ztp-device')
    .tags(['dpu-ztp'])
    .description('One device: its provisioning runs and steps, its progress reports, its traces in Tempo.')
    .editable()
    .time({ from: 'now-24h', to: 'now' })
    .variables([
      ...datasourceVariables(),
      new TextBoxVariableBuilder('device')
        .label('Device serial')
        .description('The serial number of the device'),
    ])
    .link(
      new DashboardLinkBuilder('Trace of $device in Tempo')
        .type(DashboardLinkType.Link)
        .url(explore(`{ ${serial} && name =~ "dpu-ztp.job.*" }`))
        .targetBlank(true)
        .includeVars(true),
    )
    .link(
      new DashboardLinkBuilder('Fleet overview')
        .type(DashboardLinkType.Link)
        .url('/d/dpu-ztp-fleet')
        .keepTime(true),
    )
    .withPanel(
      new TablePanel()
        .title('Runs of $device')
        .description(
          'Each provisioning run of the device is one trace (root span dpu-ztp.job.<kind>); open a row for the whole path from insert media to bootstrap-complete.',
        )
        .withTarget(
          tempo(
            `{ ${serial} && name =~ "dpu-ztp.job.(provision|decommission|power)" } | select(span.${Attr.jobId}, span.dpu_ztp.job.attempt, span.${Attr.errorCode})`,
          ),
        )
        .height(8)
        .span(24),
    )
    .withPanel(
      new TablePanel()
        .title('Steps of $device')
        .description('Every step span of the device, with its job and error code when it failed.')
        .withTarget(
          tempo(
            `{ ${serial} && name =~ "dpu-ztp.job.step.*" } | select(span.${Attr.jobStep}, span.${Attr.jobId}, span.${Attr.errorCode})`,
          ),
        )
        .height(10)
        .span(12),
    )
    .withPanel(
      new TablePanel()
        .title('Progress reports of $device')
        .description(
          'The device’s sZTP report-progress calls by progress type, and its get-bootstrapping-data calls.',
        )
        .withTarget(
          tempo(
            `{ ${serial} && name =~ "sztp.(report-progress|get-bootstrapping-data)" } | select(span.${Attr.sztpRpc}, span.${Attr.sztpProgressType}, span.${Attr.errorCode})`,
          ),
        )
        .height(10)
        .span(12),
    )
    .withPanel(
      new TablePanel()
        .title('Redfish calls for $device')
        .description('Redfish steps of the device’s runs (strategy sub-steps, probes), with their BMC.')
        .withTarget(
          tempo(
            `{ ${serial} } >> { name =~ "redfish.*" } | select(span.${Attr.redfishMethod}, span.${Attr.redfishPath}, span.${Attr.redfishStatus})`,
          ),
        )
        .height(8)
        .span(24),
    )
    .withPanel(
      new TimeseriesPanel()
        .title('Fleet step duration p95 (for comparison)')
        .description(
          'Metrics carry no serial: the fleet’s p95 per step, to compare the device’s step spans with.',
        )
        .unit('s')
        .withTarget(
          prom(
            `histogram_quantile(0.95, sum by (le, step) (rate(${M.stepDuration}{outcome="done"}[$__rate_interval])))`,
            '{{step}}',
          ),
        )
        .height(8)
        .span(24),
    )
    .build();
}

/** Every dashboard by file name (`otel/grafana/dashboards/<name>.json`). */
export function dashboards(): Record<string, unknown> {
  return { 'fleet-overview': fleetOverview(), 'device-drill-down': deviceDrillDown() };
}

/** The JSON text of a dashboard as committed (2-space indent, final newline). */
export function dashboardJson(d: unknown): string {
  return `${JSON.stringify(d, null, 2)}\n`;
}

/** Grafana's file provisioning of these dashboards (mounted at /etc/grafana/provisioning/dashboards). */
export const PROVISIONING_YAML = `# Generated by \`npm run dashboards\` (otel/grafana/dashboards.ts). Grafana file provisioning:
# mount this file under /etc/grafana/provisioning/dashboards/ and the JSON folder at the path below.
apiVersion: 1
providers:
  - name: dpu-ztp
    folder: dpu-ztp
    type: file
    disableDeletion: false
    allowUiUpdates: false
    updateIntervalSeconds: 60
    options:
      path: /var/lib/grafana/dashboards/dpu-ztp
      foldersFromFilesStructure: false
`;
