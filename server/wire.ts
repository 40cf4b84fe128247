// The one place wire types are named: aliases of what `npm run generate` emits.
import type { components, operations } from "../generated/api.js";

type Schemas = components["schemas"];
export type McpServer = Schemas["McpServer"];
export type McpServerCreate = Schemas["McpServerCreate"];
export type McpServerPatch = Schemas["McpServerPatch"];
export type McpServerList = Schemas["McpServerList"];
export type AuthType = Schemas["AuthType"];
export type ConnectorStatus = Schemas["ConnectorStatus"];
export type Problem = Schemas["Problem"];
export type ConnectionError = Schemas["ConnectionError"];
export type ConnectionCheck = Schemas["ConnectionCheck"];
export type McpTool = Schemas["McpTool"];
export type McpServerEvent = Schemas["McpServerEvent"];
export type McpServerEventList = Schemas["McpServerEventList"];
export type ToolStat = Schemas["ToolStat"];
export type ToolStatList = Schemas["ToolStatList"];
export type ServerHealth = Schemas["ServerHealth"];
export type ServerHealthList = Schemas["ServerHealthList"];
export type FieldChange = Schemas["FieldChange"];
export type OAuthAuthorization = Schemas["OAuthAuthorization"];
export type ProblemFieldError = Schemas["ProblemFieldError"];
export type Connector = Schemas["Connector"];
export type ConnectorInput = Schemas["ConnectorInput"];
export type ConnectorList = Schemas["ConnectorList"];
export type { operations };
export type OperationId = keyof operations;
