/**
 * Concurrent seats over time as inline SVG: one bar per hour or day (the peak), the seat
 * count as a dashed line, denials as a red strip under the axis. Screen readers get a
 * title and a summary; the page also offers the numbers as a table.
 */
import { useEffect, useId, useRef, useState } from 'react';

export interface Bucket {
  start: Date;
  peakSeats: number;
  seatsAtEnd: number;
  checkouts: number;
  denials: number;
}

const H = 280;
const M = { top: 22, right: 12, bottom: 40, left: 36 };
const MAX_BAR = 56;
const DENIAL_H = 18;

function niceMax(n: number): number {
  if (n <= 5) return Math.max(1, n);
  const step = niceStep(n);
  return Math.ceil(n / step) * step;
}
function niceStep(max: number): number {
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (raw <= m * mag) return Math.max(1, m * mag);
  return Math.max(1, 10 * mag);
}

export function UsageChart({
  buckets,
  seats,
  title,
  summary,
  label,
}: {
  buckets: Bucket[];
  seats: number;
  title: string;
  summary: string;
  label: (d: Date) => string;
}) {
  const id = useId();
  // Drawn at the container's real width, so labels keep their size on a phone.
  const box = useRef<HTMLDivElement>(null);
  const [W, setW] = useState(800);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const measure = () => setW(Math.max(280, Math.round(el.clientWidth)));
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  const n = Math.max(1, buckets.length);
  const maxPeak = buckets.reduce((m, b) => Math.max(m, b.peakSeats), 0);
  const yMax = niceMax(Math.max(seats, maxPeak) + (Math.max(seats, maxPeak) <= 5 ? 1 : 0));
  const maxDen = buckets.reduce((m, b) => Math.max(m, b.denials), 0);
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom - DENIAL_H - 8;
  const x = (i: number) => M.left + (i / n) * plotW;
  const bw = plotW / n;
  const y = (v: number) => M.top + plotH - (v / yMax) * plotH;
  const step = niceStep(yMax);
  const ticks: number[] = [];
  for (let v = 0; v <= yMax; v += yMax <= 5 ? 1 : step) ticks.push(v);
  const labelEvery = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(plotW / 120))));
  // Every labelEvery-th bucket, kept inside the plot and never overlapping its neighbour.
  const xLabels: { i: number; cx: number }[] = [];
  for (let i = 0; i < buckets.length; i += labelEvery) {
    const cx = Math.min(Math.max(x(i) + bw / 2, M.left + 56), W - M.right - 56);
    const prev = xLabels[xLabels.length - 1];
    if (!prev || cx - prev.cx >= 118) xLabels.push({ i, cx });
  }
  const barW = Math.min(MAX_BAR, bw > 4 ? bw * 0.76 : bw);
  const barX = (i: number) => x(i) + (bw - barW) / 2;
  const denialTop = M.top + plotH + 8;

  return (
    <figure className="chart">
      <div ref={box} className="chart-box">
        <svg viewBox={`0 0 ${W} ${H}`} width={W} height={H} role="img" aria-labelledby={`${id}-t ${id}-d`}>
          <title id={`${id}-t`}>{title}</title>
          <desc id={`${id}-d`}>{summary}</desc>
          {ticks.map((v) => (
            <g key={v} className="chart-grid">
              <line x1={M.left} x2={W - M.right} y1={y(v)} y2={y(v)} />
              <text x={M.left - 6} y={y(v)} dy="0.32em" textAnchor="end">
                {v}
              </text>
            </g>
          ))}
          <g className="chart-bars">
            {buckets.map((b, i) => (
              <rect
                key={i}
                x={barX(i)}
                width={Math.max(0.5, barW)}
                y={y(b.peakSeats)}
                height={Math.max(0, y(0) - y(b.peakSeats))}
                className={b.peakSeats >= seats && seats > 0 ? 'bar-full' : undefined}
              >
                <title>{`${label(b.start)}: peak ${b.peakSeats} of ${seats} seats, ${b.checkouts} checkouts, ${b.denials} denials`}</title>
              </rect>
            ))}
          </g>
          <g className="chart-denials">
            <text x={M.left - 6} y={denialTop + DENIAL_H / 2} dy="0.32em" textAnchor="end" className="chart-den-label">
              ✕
            </text>
            {buckets.map((b, i) =>
              b.denials > 0 ? (
                <rect
                  key={i}
                  x={barX(i)}
                  width={Math.max(1, barW)}
                  y={denialTop}
                  height={DENIAL_H}
                  opacity={0.35 + 0.65 * (b.denials / maxDen)}
                >
                  <title>{`${label(b.start)}: ${b.denials} denied`}</title>
                </rect>
              ) : null,
            )}
          </g>
          <line className="chart-axis" x1={M.left} x2={W - M.right} y1={y(0)} y2={y(0)} />
          {seats > 0 && (
            <g className="chart-capacity">
              <line x1={M.left} x2={W - M.right} y1={y(seats)} y2={y(seats)} />
              <text x={M.left + 4} y={y(seats) - 5} textAnchor="start">
                {seats} seats
              </text>
            </g>
          )}
          <g className="chart-xlabels">
            {xLabels.map(({ i, cx }) => (
              <text key={i} x={cx} y={H - 14} textAnchor="middle">
                {label((buckets[i] as Bucket).start)}
              </text>
            ))}
          </g>
        </svg>
      </div>
      <figcaption className="legend">
        <span>
          <span className="swatch swatch-bar" aria-hidden="true" /> peak seats in use
        </span>
        <span>
          <span className="swatch swatch-full" aria-hidden="true" /> every seat in use
        </span>
        <span>
          <span className="swatch swatch-cap" aria-hidden="true" /> seats on the license
        </span>
        <span>
          <span className="swatch swatch-den" aria-hidden="true" /> denials (no seat free)
        </span>
      </figcaption>
    </figure>
  );
}
