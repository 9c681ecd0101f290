-- Argo CD health check for ferry.dev/Connector (resource.customizations.health.ferry.dev_Connector).
-- The operator probes the endpoint and says in the Ready condition whether it can be used at
-- all, and for MySQL in BinlogReady whether its binlog can be read (a source needs that, a
-- sink does not):
--   not yet observed (no status, observedGeneration < generation, Ready Unknown) -> Progressing
--   Ready=True                                 -> Healthy (the message notes BinlogReady=False)
--   Ready=False (bad password, unreachable, Secret missing, ...)               -> Degraded
local hs = { status = "Progressing", message = "Waiting for the Ferry operator to probe the endpoint" }
if obj.status == nil then
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (obj.status.observedGeneration == nil or obj.status.observedGeneration < generation) then
  hs.message = "Waiting for the Ferry operator to observe generation " .. tostring(math.floor(generation))
  return hs
end
local ready = nil
local binlog = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    elseif condition.type == "BinlogReady" then
      binlog = condition
    end
  end
end
if ready == nil or ready.status == "Unknown" then
  return hs
end
local text = ready.reason or ""
if ready.message ~= nil and ready.message ~= "" then
  text = text .. ": " .. ready.message
end
if ready.status == "True" then
  hs.status = "Healthy"
  if binlog ~= nil and binlog.status == "False" then
    text = text .. "; not readable as a binlog source (usable as a sink): " .. (binlog.reason or "")
    if binlog.message ~= nil and binlog.message ~= "" then
      text = text .. ": " .. binlog.message
    end
  end
else
  hs.status = "Degraded"
end
hs.message = text
return hs
