/**
 * Escaping for XML and HTML text and attribute values. Host, step and play names, error
 * messages and stderr all reach the reports as text from playbooks and nodes: anything may
 * be in them.
 */

/**
 * Characters XML 1.0 forbids even when escaped (control characters other than tab, LF, CR;
 * lone surrogates; U+FFFE/U+FFFF). A command's stderr can carry them (a colour escape, a NUL),
 * and one of them makes the whole file unreadable to a CI server's parser.
 */
// eslint-disable-next-line no-control-regex
const INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Text content: `&`, `<`, `>` escaped; forbidden characters replaced by U+FFFD. */
export function escapeText(s: string): string {
  return s.replace(INVALID, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * An attribute value in double quotes. Newlines and tabs are written as character references:
 * a parser normalises literal ones in attributes to spaces, and a failure message is multi-line.
 */
export function escapeAttr(s: string): string {
  return escapeText(s).replace(/"/g, '&quot;').replace(/'/g, '&#39;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}
