/** Admin API: GET /bridges (every bridge) and GET /bridges/:name (one), as bridgeStatus() describes them. */
import { HttpError, only, send, type AdminRequest } from "../ops/admin.js";
import { bridgesOf } from "./index.js";
import { bridgeStatus } from "./ops.js";

/** GET /bridges and GET /bridges/:name. */
export async function bridgesRoute(r: AdminRequest): Promise<boolean> {
  const [root, name, ...rest] = r.segs;
  if (root !== "bridges" || rest.length > 0) return false;
  only(r.method, ["GET"]);
  const bridges = bridgesOf(r.deps.aedes);
  if (name === undefined) {
    send(r.res, 200, { bridges: bridges.map((b) => bridgeStatus(b)) });
    return true;
  }
  const b = bridges.find((x) => x.cfg.name === name);
  if (!b) throw new HttpError(404, `no bridge named "${name}"`);
  send(r.res, 200, bridgeStatus(b));
  return true;
}

