/**
 * Tag selection with Ansible's rules, so runbooks written for Ansible read the same here:
 * `always` runs unless skipped by name; `never` runs only when one of its tags is asked for;
 * `--tags all` (the default) is everything but `never`; `--skip-tags` wins over `--tags`.
 */
export interface TagFilter {
  tags?: string[];
  skipTags?: string[];
}

export function tagSelected(stepTags: string[], f: TagFilter): boolean {
  const has = (t: string) => stepTags.includes(t);
  const skip = f.skipTags ?? [];
  if (stepTags.some((t) => skip.includes(t))) return false;
  const wanted = f.tags && f.tags.length > 0 ? f.tags : ['all'];
  if (has('always')) return true;
  const named = stepTags.filter((t) => t !== 'never').some((t) => wanted.includes(t)) || (has('never') && wanted.includes('never'));
  if (has('never')) return named;
  return wanted.includes('all') || named;
}
