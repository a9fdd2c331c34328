// Native twin of plugins-as/sdk/topic-cover.ts: filterCovers with "%u" / "%c"
// in the rule filter standing for the client's username / client id.
import { filterCovers, substitution } from "./topic.js";

const C_PERCENT = 0x25;
const C_c = 0x63;
const C_u = 0x75;

/**
 * filterCovers for a rule filter in which "%u" stands for the client's username
 * (null: the client sent none) and "%c" for its client id: a rule that needs a
 * substitution that is absent, empty, or contains '/', '+', '#' or U+0000
 * covers nothing; substitutions are taken literally. (Twin of
 * filterCoversTemplate in plugins-as/sdk/topic-cover.ts.)
 */
export function filterCoversTemplate(filter: string, sub: string, username: string | null, clientId: string): boolean {
  let out = "";
  let from = 0;
  for (let i = 0; i + 1 < filter.length; i++) {
    if (filter.charCodeAt(i) !== C_PERCENT) continue;
    const token = filter.charCodeAt(i + 1);
    if (token !== C_u && token !== C_c) continue;
    const value = substitution(token === C_u ? username : clientId);
    if (value === null) return false;
    out += filter.substring(from, i) + value;
    i++;
    from = i + 1;
  }
  return filterCovers(out + filter.substring(from), sub);
}
