-- Argo CD health check for Torii resources (GatewayAPI, GatewayKey, OAuthClient).
-- Ready=True -> Healthy; Ready=False -> Degraded; no status yet, or a Ready condition computed for an older
-- metadata.generation -> Progressing.
local hs = {}
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Torii operator"
  return hs
end
local generation = obj.metadata.generation
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    if generation ~= nil and (condition.observedGeneration == nil or condition.observedGeneration < generation) then
      hs.status = "Progressing"
      hs.message = "Waiting for the operator to reconcile generation " .. tostring(generation)
      return hs
    end
    local detail = (condition.reason or "") .. ": " .. (condition.message or "")
    if condition.status == "True" then
      hs.status = "Healthy"
    elseif condition.status == "False" then
      hs.status = "Degraded"
    else
      hs.status = "Progressing"
    end
    hs.message = detail
    return hs
  end
end
hs.status = "Progressing"
hs.message = "No Ready condition yet"
return hs
