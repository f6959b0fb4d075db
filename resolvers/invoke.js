// One unit resolver for every field: hands the whole AppSync context to the Lambda function
// (so Powertools routes it as a direct resolver would) and turns the function's typed error
// into a GraphQL error with errorInfo, which a pure direct Lambda resolver cannot fill.
import { util } from '@aws-appsync/utils';

export function request(ctx) {
  return {
    operation: 'Invoke',
    payload: {
      arguments: ctx.arguments,
      identity: ctx.identity,
      source: ctx.source,
      request: ctx.request,
      info: ctx.info,
      prev: ctx.prev,
      stash: ctx.stash,
    },
  };
}

export function response(ctx) {
  if (ctx.error) {
    util.error('An internal error occurred', 'InternalFailure');
  }
  const answer = ctx.result;
  if (answer.error) {
    util.error(answer.error.message, answer.error.type, null, answer.error.info);
  }
  // Errors beside data (some invites not sent): the field keeps its value and the response lists them.
  for (const warning of answer.warnings || []) {
    util.appendError(warning.message, warning.type, null, warning.info);
  }
  return answer.data;
}
