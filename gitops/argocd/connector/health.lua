-- Argo CD health check for ferry.dev/Connector (resource.customizations.health.ferry.dev_Connector).
-- The operator probes the endpoint and says in the Ready condition exactly what is missing:
--   not yet observed (no status, observedGeneration < generation, Ready Unknown) -> Progressing
--   Ready=True                                                                 -> Healthy
--   Ready=False (bad password, missing grant, binlog not ROW, ...)             -> Degraded
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
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
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
else
  hs.status = "Degraded"
end
hs.message = text
return hs
