// What reading a connector's settings gives: the value, or an error naming what is wrong
// and where (an error value at the boundary, not an exception).
export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };
