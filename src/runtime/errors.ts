// An error in the options a library call was given. Its message names each option as `{name}`, the
// field of the options object (or `{name:false}`, the option turned off); the library words it by
// that name, and a command by its own flag for it (`{multipleOf}` -> --multiple-of, `{eval:false}` ->
// --no-eval), so that the library never names a command-line flag. Text that is not an option (a path,
// another error's message) goes in through quote(), its braces doubled.

const OPTION = /\{\{|\}\}|\{([A-Za-z][A-Za-z0-9]*)(:false)?\}/g;

/** s as literal text inside a template (braces doubled) */
export const quote = (s: string): string => s.replace(/[{}]/g, (c) => c + c);

export class OptionError extends Error {
  /** the options the message names, in order */
  readonly options: string[];

  /** `template`: the message with each option as {name} */
  constructor(readonly template: string) {
    super(wordOptions(template, (name, off) => (off ? `${name}: false` : name)));
    this.name = 'OptionError';
    this.options = [...template.matchAll(OPTION)].filter((m) => m[1] !== undefined).map((m) => m[1]);
  }

  /** the message with each {name} worded by `word` (a command: its flag; `off`: the option turned off) */
  worded(word: (option: string, off: boolean) => string): string {
    return wordOptions(this.template, word);
  }
}

/** `template` with each {name} (or {name:false}) worded by `word` */
export function wordOptions(template: string, word: (option: string, off: boolean) => string): string {
  return template.replace(OPTION, (m: string, name?: string, off?: string) => (name === undefined ? m[0] : word(name, off !== undefined)));
}
