// Type declarations for perezvon's ctw.js, the Calltouch-compatible "JavaScript Callback API".
// Served at {BASE}/ctw.d.ts. Reference it with `/// <reference path="./ctw.d.ts" />` or add it to
// your tsconfig "files"; it declares `window.ctw` globally.
// Every callback is called exactly once and asynchronously, whatever happens.

/** One working hour of the call center's weekly schedule. */
export interface WorkingHour {
  /** Hour of the day, 0..23, local to `utcTimezone`. */
  hour: number;
  /** ISO day of the week: Monday = 1 .. Sunday = 7. */
  dayOfWeek: number;
}

export interface WorkingSchedule {
  /** The call center's UTC offset, e.g. "UTC+03:00". */
  utcTimezone: string;
  hours: WorkingHour[];
}

export type CallCenterWorkingMode = "working_hours" | "non_working_hours";

export interface WidgetData {
  /** The widget's id (Calltouch's own script reads it too). */
  widgetId?: number;
  /** Whether the call center works right now. */
  callCenterWorkingMode: CallCenterWorkingMode;
  /** Whether requests are accepted outside working hours (queued for the next working hour). */
  collectNonWorkingRequests: boolean;
  /** The same value as collectNonWorkingRequests (the reference's example spells it so). */
  collectRequests: boolean;
  workingSchedule: WorkingSchedule;
}

/** No enabled widget for the routeKey, or the callback service is not active for the site. */
export interface RouteKeyDataNotFound {
  widgetFound: false;
  widgetData: null;
}

export interface RouteKeyDataFound {
  widgetFound: true;
  widgetData: WidgetData;
}

export type RouteKeyDataSuccessResponse = RouteKeyDataNotFound | RouteKeyDataFound;

export interface CreateRequestSuccessResponse {
  /** The callback request's id (the journal shows the same id). */
  callbackRequestId: number;
  /** perezvon: the visitor's key to this request's status (`POST /api/widget/v1/request-status`). */
  statusToken?: string;
  /** perezvon: present when the widget's analytics events are on; ctw.js has already sent them. */
  analytics?: {goal: string; metrikaCounterId?: number};
}

/** An extra `{name, value}` pair: strings of 1..255 characters (Latin or Cyrillic). */
export interface RequestField {
  name: string;
  value: string;
}

/**
 * Error types. `unknown_error` is made by the SDK itself (timeout, connection reset, CORS refusal,
 * bad JSON, unexpected HTTP status, missing ?site=); the others come from the server.
 */
export type ErrorType =
  | "unknown_error"              // (SDK)  network/timeout/JSON/HTTP trouble, see message
  | "server_error"               // 500    the server failed
  | "validation_error"           // 400    invalid arguments; details.fields lists every one
  | "request_throttle_timeout"   // 429    too soon after this visitor's previous request
  | "request_throttle_count"     // 429    too many requests per period (per phone, or per IP/second)
  | "request_phone_blacklisted"  // 403    the phone is on the site's blacklist
  | "request_widget_not_found"   // 404    no enabled widget for the routeKey
  | "request_non_working_hours"  // 409    outside working hours and non-working requests not collected
  | "api_points_exhausted"       // 429    the site's daily API points are spent
  | "origin_not_allowed";        // 403    the page's origin is not allowed for the site

/** Messages the SDK uses for unknown_error (Calltouch's own). */
export type UnknownErrorMessage =
  | "Request timeout exceeded or connection reset"
  | "JSON parse error"
  | "Unknown JSON format"
  | `Unexpected HTTP code: ${number}`
  | "Unexpected js exception"
  | "No ?site= in the ctw.js URL";

export interface FieldError {
  message: string;
}

export interface InvalidField {
  /** The argument's name: "routeKey", "phone", "fields", "fields[0].name", "tags[2]", "unitId", … */
  name: string;
  errors: FieldError[];
}

export interface ValidationErrorDetails {
  fields: InvalidField[];
}

export interface ValidationErrorResponse {
  type: "validation_error";
  message: string;
  details: ValidationErrorDetails;
}

export interface OtherErrorResponse {
  type: Exclude<ErrorType, "validation_error">;
  message: string;
  /** Extra data; `{}` when there is none (throttles may carry when to retry). */
  details: { [key: string]: unknown };
}

export type ErrorResponse = ValidationErrorResponse | OtherErrorResponse;

/**
 * `(success, responseData) => void`: when `success` is true, `responseData` is the success body,
 * otherwise an ErrorResponse (TypeScript narrows `responseData` after `if (success)`).
 */
export type RequestCallback<T> = (
  ...args: [success: true, responseData: T] | [success: false, responseData: ErrorResponse]
) => void;

export type RouteKeyDataRequestCallback = RequestCallback<RouteKeyDataSuccessResponse>;
export type CreateRequestRequestCallback = RequestCallback<CreateRequestSuccessResponse>;

export interface Ctw {
  /**
   * Whether an enabled widget exists for `routeKey` and whether the call center works now.
   * @param routeKey the form's id, 1..255 characters
   */
  getRouteKeyData(
    routeKey: string,
    requestCallback?: RouteKeyDataRequestCallback,
  ): void;

  /**
   * Creates a callback request. Values are sent as given; the server validates them all at once.
   * @param routeKey the form's id, 1..255 characters
   * @param phone 11 digits with country and city code, no plus: "79001234567"
   * @param fields at most 5 `{name, value}` (order kept: journal and speech), or []
   * @param scheduleTime "YYYY-MM-DD HH:MM:SS" in the call center's time zone, or null to call now
   * @param tags at most 10 strings of 1..100 characters, or null
   * @param unitId the department (unit) to call, or null
   * @param customFields extra `{name, value}` pairs, sent as `customFields` (Calltouch's 8th argument)
   */
  createRequest(
    routeKey: string,
    phone: string,
    fields: RequestField[],
    requestCallback?: CreateRequestRequestCallback,
    scheduleTime?: string | null,
    tags?: string[] | null,
    unitId?: number | null,
    customFields?: RequestField[] | null,
  ): void;
  /** Loose form: fields left out, the callback in their place (sent as fields = []). */
  createRequest(
    routeKey: string,
    phone: string,
    requestCallback: CreateRequestRequestCallback,
    scheduleTime?: string | null,
    tags?: string[] | null,
    unitId?: number | null,
    customFields?: RequestField[] | null,
  ): void;
}

declare global {
  interface Window {
    ctw: Ctw;
  }
  // eslint-disable-next-line no-var
  var ctw: Ctw;
}
