/**
 * Ansible keywords baton deliberately does not have, and what to write instead. A playbook
 * written by Ansible habit then fails with the way forward, not with "unknown key".
 */
const ROLLBACK =
  'baton has no block/rescue/always: when a step fails, every change of the run is reverted, newest first (on_failure: rollback, the default; on_failure: stop leaves them). List the steps directly; use "ignore_errors: true" on a step whose failure is fine';

/** Step-level keywords. */
export const STEP_INSTEAD: Record<string, string> = {
  block: ROLLBACK,
  rescue: ROLLBACK,
  always: ROLLBACK,
  include_tasks: 'baton has no include_tasks: put the steps in a role and use it as { role: NAME, steps_from: FILE } under the play\'s "roles:"',
  import_tasks: 'baton has no import_tasks: put the steps in a role and use it as { role: NAME, steps_from: FILE } under the play\'s "roles:"',
  include_role: 'baton has no include_role: list the role under the play\'s "roles:" ({ role: NAME, steps_from: FILE })',
  import_role: 'baton has no import_role: list the role under the play\'s "roles:" ({ role: NAME, steps_from: FILE })',
  notify: 'baton has no handlers: register the step ("register: NAME") and give the follow-up step "when: NAME is changed"',
  shell: 'baton never runs shell strings: use "command: { argv: [program, arg, ...] }" (each argument is passed as is)',
  become_method: 'baton becomes another user with sudo -n only: remove "become_method"',
};

/** Play-level keywords. */
export const PLAY_INSTEAD: Record<string, string> = {
  import_playbook: 'baton has no import_playbook: run the playbooks one after the other, or put their plays in one file',
  include_playbook: 'baton has no include_playbook: run the playbooks one after the other, or put their plays in one file',
  handlers: 'baton has no handlers: register the step ("register: NAME") and give the follow-up step "when: NAME is changed"',
  pre_tasks: 'baton has no pre_tasks: put these steps first in "steps:" (roles run before the play\'s own steps)',
  post_tasks: 'baton has no post_tasks: put these steps last in "steps:"',
  become_method: 'baton becomes another user with sudo -n only: remove "become_method"',
  strategy: 'baton runs each step on every host before the next (Ansible\'s linear strategy) and has no other: remove "strategy"',
};
