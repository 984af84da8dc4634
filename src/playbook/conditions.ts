import {
  evaluate,
  ExprEvalError,
  ExprSyntaxError,
  parseBoolExpr,
  requiredRefs,
  truthy,
  UndefinedVariableError,
  type Expr,
} from './expr.js';

/**
 * `when:` expressions, written bare as in Ansible (`role == 'primary' and vip is defined`).
 * A whole-string `{{ ... }}` wrapper is accepted and stripped, since people write it anyway.
 */
export type Condition = Expr;

export class ConditionError extends Error {
  constructor(
    message: string,
    /** 1-based column inside the expression text, for a syntax error. */
    readonly col?: number,
  ) {
    super(message);
    this.name = 'ConditionError';
  }
}

const WRAPPED = /^\s*\{\{(.*)\}\}\s*$/s;

export function parseCondition(expr: string): Condition {
  const m = WRAPPED.exec(expr);
  const body = m ? m[1]! : expr;
  const offset = m ? expr.indexOf('{{') + 2 : 0;
  if (!body.trim()) throw new ConditionError('empty condition', 1);
  try {
    return parseBoolExpr(body);
  } catch (err) {
    if (err instanceof ExprSyntaxError) {
      throw new ConditionError(`bad condition ${JSON.stringify(expr)}: ${err.reason} at character ${err.pos + offset + 1}`, err.pos + offset + 1);
    }
    throw err;
  }
}

/** Throws ConditionError naming the undefined variable or the impossible comparison. */
export function evalCondition(ast: Condition, vars: Record<string, unknown>): boolean {
  try {
    return truthy(evaluate(ast, vars));
  } catch (err) {
    if (err instanceof UndefinedVariableError) {
      throw new ConditionError(`undefined variable "${err.variable}" in condition (guard it with "${err.variable.split(/[.[]/)[0]} is defined")`);
    }
    if (err instanceof ExprEvalError) throw new ConditionError(err.message);
    throw err;
  }
}

/** Root variables the condition needs: not those it tests with `is defined`, nor under `default`. */
export function conditionRefs(ast: Condition): string[] {
  return requiredRefs(ast);
}

/** Every condition of a `when:` list holds (an empty list always does). */
export function allHold(conditions: readonly string[], vars: Record<string, unknown>): boolean {
  return conditions.every((c) => evalCondition(parseCondition(c), vars));
}
