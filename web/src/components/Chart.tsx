import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

// spanGaps: draw the line across nulls (series merged onto one time axis); off by default,
// so that a device that was silent shows as a gap.
export type Series = { label: string; color: string; points?: boolean; spanGaps?: boolean };

// A uPlot chart that keeps its instance across renders: new data goes through setData, which
// redraws in a few milliseconds even with days of points (uPlot draws columns of numbers, no
// per-point objects). `data` is [timestamps in seconds, values...].
// uPlot stretches a time axis with one distinct time over years: give it an hour each side.
function fitSinglePoint(u: uPlot, data: uPlot.AlignedData) {
  const xs = data[0];
  if (xs.length > 0 && xs[0] === xs[xs.length - 1]) u.setScale("x", { min: xs[0] - 3600, max: xs[0] + 3600 });
}

export function Chart(props: {
  data: uPlot.AlignedData;
  series: Series[];
  height?: number;
  title?: string;
  markers?: { ts: number; label: string }[];
  onRendered?: (ms: number) => void;
  testId?: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const markers = useRef(props.markers ?? []);
  markers.current = props.markers ?? [];
  // When the data given last started to be drawn; the draw hook reports the time it took
  // (uPlot draws in a microtask after setData, not inside it).
  const drawing = useRef<number | null>(null);
  const shown = useRef<uPlot.AlignedData | null>(null);
  const onRendered = useRef(props.onRendered);
  onRendered.current = props.onRendered;

  useEffect(() => {
    const el = host.current!;
    const opts: uPlot.Options = {
      width: Math.max(320, el.clientWidth),
      height: props.height ?? 220,
      title: props.title,
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true } },
      series: [{}, ...props.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, points: { show: s.points ?? false }, spanGaps: s.spanGaps ?? false }))],
      axes: [{}, { size: 60 }],
      hooks: {
        draw: [
          (u: uPlot) => {
            if (drawing.current !== null) {
              onRendered.current?.(performance.now() - drawing.current);
              drawing.current = null;
            }
            // Event markers (failures, maintenance, alarms) as vertical lines.
            const ctx = u.ctx;
            ctx.save();
            ctx.strokeStyle = "#c0392b";
            ctx.setLineDash([4, 4]);
            for (const m of markers.current) {
              const x = Math.round(u.valToPos(m.ts, "x", true));
              if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
              ctx.beginPath();
              ctx.moveTo(x, u.bbox.top);
              ctx.lineTo(x, u.bbox.top + u.bbox.height);
              ctx.stroke();
            }
            ctx.restore();
          },
        ],
      },
    };
    drawing.current = performance.now();
    plot.current = new uPlot(opts, props.data, el);
    shown.current = props.data;
    fitSinglePoint(plot.current, props.data);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(320, el.clientWidth), height: props.height ?? 220 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // The series layout is fixed for a chart's life; data changes go through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [props.series.map((s) => s.label).join("|")]);

  useEffect(() => {
    if (!plot.current || shown.current === props.data) return;  // drawn when it was made
    drawing.current = performance.now();
    plot.current.setData(props.data);
    shown.current = props.data;
    fitSinglePoint(plot.current, props.data);
  }, [props.data]);

  return <div class="chart" ref={host} data-testid={props.testId} />;
}
