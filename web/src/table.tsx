/**
 * The one table every list page draws (jobs, a job's devices, a device's
 * progress reports, BMCs, images, profiles): a caption for screen readers,
 * a header row of `scope="col"` cells, one row per item, and the page's own
 * sentence when the list is empty. The fleet's table is not one of these: it
 * is virtualised (pages/fleet.tsx) so that thousands of devices stay fast.
 */
import type { ComponentChildren, JSX } from 'preact';

/** One column: its header and how a row fills its cell. */
export interface Column<T> {
  /** Header text (also the cell's key: unique within a table). */
  head: string;
  /** The cell's content for `row`. */
  cell(row: T): ComponentChildren;
  /** `data-testid` of the column's cells, for tests that read one cell of a row. */
  testId?: string;
}

export interface TableProps<T> {
  /** What the table lists, for screen readers (visually hidden). */
  caption: ComponentChildren;
  columns: readonly Column<T>[];
  /** The rows; nothing is drawn while they are not loaded (`undefined`). */
  rows: readonly T[] | undefined;
  /** A stable key per row (its id). */
  rowKey(row: T): string;
  /** Extra attributes of a row's `<tr>` (`data-*` names for tests, a class). */
  rowProps?(row: T): JSX.HTMLAttributes<HTMLTableRowElement> & Record<`data-${string}`, string>;
  /** Said instead of the table when there are no rows; without it an empty table is drawn. */
  empty?: ComponentChildren;
}

/** A plain table of `rows`, one `<td>` per column. */
export function Table<T>({ caption, columns, rows, rowKey, rowProps, empty }: TableProps<T>) {
  if (!rows) return null;
  if (rows.length === 0 && empty !== undefined) return <p class="muted">{empty}</p>;
  return (
    <table class="plain">
      <caption class="sr-only">{caption}</caption>
      <thead>
        <tr>
          {columns.map((c) => (
            <th scope="col" key={c.head}>
              {c.head}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={rowKey(r)} {...rowProps?.(r)}>
            {columns.map((c) => (
              <td key={c.head} data-testid={c.testId}>
                {c.cell(r)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
