// The host interface of the WIT world, as the unit tests see it: each
// `log` and `progress` call is appended to `calls`, in order, for the
// tests to read (and empty between tests).
export const calls = [];

export function log(level, message) {
  calls.push(['log', level, message]);
}

export function progress(percent, message) {
  calls.push(['progress', percent, message]);
}
