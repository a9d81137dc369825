import { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";

// Renders only the rows in view (plus a margin), so ten thousand devices cost what forty do.
export function VirtualTable<T>(props: {
  rows: T[];
  rowHeight: number;
  height: number;
  header: ComponentChildren;
  row: (item: T, index: number) => ComponentChildren;
  testId?: string;
}) {
  const [top, setTop] = useState(0);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (box.current && top > props.rows.length * props.rowHeight) box.current.scrollTop = 0;
  }, [props.rows.length]);
  const first = Math.max(0, Math.floor(top / props.rowHeight) - 10);
  const last = Math.min(props.rows.length, Math.ceil((top + props.height) / props.rowHeight) + 10);
  const visible = props.rows.slice(first, last);
  return (
    <div class="vtable" data-testid={props.testId}>
      <div class="vtable-head">{props.header}</div>
      <div class="vtable-body" ref={box} style={{ height: `${props.height}px` }} onScroll={(e) => setTop((e.target as HTMLDivElement).scrollTop)}>
        <div style={{ height: `${props.rows.length * props.rowHeight}px`, position: "relative" }}>
          <div style={{ position: "absolute", top: `${first * props.rowHeight}px`, left: 0, right: 0 }}>
            {visible.map((item, i) => props.row(item, first + i))}
          </div>
        </div>
      </div>
    </div>
  );
}
