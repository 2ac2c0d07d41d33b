// Texts in Chinese (the default) and English; the choice is kept in localStorage.
// Static texts name their key in a data-i18n attribute (data-i18n-placeholder, data-i18n-label: aria-label).

const zh = {
  site: "小区", nav: "导航", "nav.manager": "看板", "nav.maintenance": "维修", "nav.guard": "巡更", "nav.assets": "设施",
  logout: "退出", loading: "加载中…", nodata: "暂无数据", updated: "更新于", all: "全部", close: "关闭", copy: "复制",
  copied: "已复制", remove: "删除", prev: "上一页", next: "下一页", time: "时间", note: "备注", priority: "优先级",
  category: "类别", state: "状态", target: "目标", online: "在线", offline: "离线", opened: "报修",
  assignee: "负责人", occurrences: "发生 {n} 次", by_sensor: "传感器",
  "role.admin": "管理员", "role.manager": "经理", "role.maintenance": "维修", "role.guard": "保安",
  "live.on": "实时", "live.retry": "重连中", "live.off": "离线",
  "err.network": "无法连接网关，请检查网络后重试。",
  "dur.d": "{d} 天 {h} 小时", "dur.h": "{h} 小时 {m} 分", "dur.m": "{m} 分钟", "dur.s": "{s} 秒",
  "cd.left": "还剩 {d}", "cd.over": "已超时 {d}",
  "login.title": "登录", "login.user": "用户名", "login.password": "密码", "login.submit": "登录",
  "login.as": "当前已登录：{name}。", "login.continue": "继续",
  "pw.title": "修改密码", "pw.why": "首次登录或密码已被重置：请设置您自己的新密码。", "pw.current": "当前密码",
  "pw.new": "新密码", "pw.repeat": "再次输入新密码", "pw.submit": "保存新密码", "pw.mismatch": "两次输入的新密码不一致。",
  "mgr.title": "服务承诺看板", "mgr.commitments": "服务承诺", "mgr.intact": "设施完好率（本月每日）",
  "mgr.tickets": "未完成工单", "mgr.facilities": "设施现状", "mgr.patrols": "今日巡更", "mgr.callbacks": "待回访",
  "mgr.report": "月度公示", "mgr.month": "月份", "mgr.report_lang": "语言", "mgr.open_report": "打开可打印的公示",
  "mgr.to_queue": "打开维修工单队列", "mgr.to_assets": "设施与设备", "mgr.to_callbacks": "去回访",
  "met.met": "达标", "met.missed": "未达标", "met.none": "暂无数据",
  "fc.can": "本月还可承受 {h} 小时设施故障", "fc.cannot": "本月已无法达标", "fc.best": "最好情况",
  "sla.on_time": "按时", "sla.at_risk": "将超时", "sla.overdue": "已超时", "tickets.live": "合计",
  "prio.emergency": "急修", "prio.urgent": "紧急", "prio.general": "零修",
  "cat.lighting": "照明", "cat.fire": "消防", "cat.drainage": "排水",
  "state.intact": "完好", "state.faulty": "故障", "state.unknown": "未知",
  "visit.on_time": "按时", "visit.early": "提前", "visit.late": "迟到", "visit.out_of_order": "顺序不对",
  "visit.missed": "漏检", "visit.pending": "待巡",
  "round.due": "待开始", "round.started": "进行中", "round.closed": "已完成", "round.missed": "未巡", "round.due_at": "计划",
  "rounds.none": "暂无巡更安排",
  "mt.title": "维修工单", "mt.which": "显示哪些工单", "mt.mine": "我的及待接单", "mt.all": "全部未完成工单",
  "mt.by_deadline": "按截止时间排序", "mt.count": "{n} 张工单", "mt.none": "没有未完成的工单。",
  "mt.none_mine": "没有待您处理的工单。", "mt.more": "位置与读数", "mt.callbacks": "待回访",
  "st.open": "待响应", "st.acknowledged": "已响应", "st.on_site": "已到场", "st.resolved": "待确认", "st.closed": "已关闭",
  "st.cancelled": "已取消",
  "clock.respond": "响应", "clock.arrive": "到场", "clock.resolve": "完成",
  "cs.on_time": "按时", "cs.at_risk": "将超时", "cs.overdue": "已超时", "cs.met": "已达成", "cs.missed": "已超时完成",
  "due.respond": "响应截止", "due.arrive": "到场截止", "due.resolve": "完成截止",
  "act.acknowledge": "响应接单", "act.arrive": "已到现场", "act.resolve": "维修完成",
  "done.acknowledge": "工单 #{id} 已响应", "done.arrive": "工单 #{id}：已到现场", "done.resolve": "工单 #{id}：已完成维修",
  "asset.location": "位置", "readings.title": "最近 24 小时读数", "readings.none": "最近 {h} 小时没有读数",
  "cb.due": "回访截止", "cb.channel": "方式", "cb.score": "满意度", "cb.save": "记录回访", "cb.none": "没有待回访的工单。",
  "cb.saved": "工单 #{id} 的回访已记录",
  "ch.phone": "电话", "ch.visit": "上门", "ch.wechat": "微信", "ch.sms": "短信", "ch.other": "其他",
  "score.5": "很满意", "score.4": "满意", "score.3": "一般", "score.2": "不满意", "score.1": "很不满意",
  "gd.title": "巡更", "gd.current": "当前巡更", "gd.tap": "打卡", "gd.scan": "扫描 NFC 标签",
  "gd.scanning": "请把手机靠近巡更点标签…", "gd.nfc_error": "NFC 读取失败，请手动输入标签。",
  "gd.pick": "选择巡更点", "gd.pick_none": "— 选择后自动填写标签 —", "gd.tag": "标签编号",
  "gd.tag_hint": "如 04A224B2C15E80", "gd.record": "记录打卡", "gd.recorded": "✓ {name} 已记录",
  "gd.unknown": "未知标签 {tag}", "gd.next": "下一个巡更点", "gd.progress": "已巡 {done} / {n} 个巡更点",
  "gd.all_done": "本轮巡更点已全部打卡 ✓", "gd.no_next": "本轮没有待巡的巡更点", "gd.today": "今日巡更",
  "gd.report": "报告问题", "gd.p_title": "问题", "gd.p_title_hint": "如：3号楼楼道灯不亮", "gd.p_asset": "设施编号（可选）",
  "gd.p_photo": "照片", "gd.p_send": "上报", "gd.reported": "已上报，工单 #{id}", "gd.bad_photo": "无法读取这张照片",
  "gd.photo_n": "照片 {n}",
  "as.title": "设施与设备", "as.assets": "设施", "as.none": "没有符合条件的设施。", "as.kind": "类型", "as.device": "设备",
  "as.faults": "故障", "as.cause": "原因", "as.history": "状态记录（30 天）", "as.unbound": "未绑定的设备",
  "as.unbound_hint": "这些设备在发送数据，但站点文件中没有设施绑定它们。把下面的片段加入站点文件，填好编号，然后重新加载。",
  "as.none_unbound": "所有设备都已绑定。", "as.last_seen": "最近上报", "as.snippet_id": "填写设施编号",
  "as.reload": "重新加载站点文件", "as.reloaded": "站点文件已重新加载：{assets} 个设施，{checkpoints} 个巡更点",
  "as.dead": "被拒收的消息", "as.reason": "原因", "as.source": "来源", "as.payload": "内容", "as.older": "更早的",
  "as.none_dead": "没有被拒收的消息。",
  "field.on": "亮灯", "field.current_a": "电流（A）", "field.voltage_v": "电压（V）", "field.power_w": "功率（W）",
  "field.lux": "照度（lx）", "field.pressure_mpa": "压力（MPa）", "field.present": "在位", "field.alarm": "报警",
  "field.battery_pct": "电量（%）", "field.tamper": "防拆", "field.level_m": "水位（m）",
  "field.cover_tilt_deg": "井盖倾角（°）", "field.cover_open": "井盖打开", "field.rssi_dbm": "信号（dBm）",
};

const en = {
  site: "Site", nav: "Navigation", "nav.manager": "Dashboard", "nav.maintenance": "Repairs", "nav.guard": "Patrol",
  "nav.assets": "Assets", logout: "Log out", loading: "Loading…", nodata: "No data yet", updated: "Updated",
  all: "All", close: "Close", copy: "Copy", copied: "Copied", remove: "Remove", prev: "Previous", next: "Next",
  time: "Time", note: "Note", priority: "Priority", category: "Category", state: "State", target: "target",
  online: "online", offline: "offline", opened: "Opened", assignee: "Assignee", occurrences: "{n} occurrences",
  by_sensor: "the sensor",
  "role.admin": "admin", "role.manager": "manager", "role.maintenance": "maintenance", "role.guard": "guard",
  "live.on": "live", "live.retry": "reconnecting", "live.off": "offline",
  "err.network": "The gateway cannot be reached: check the network and try again.",
  "dur.d": "{d} d {h} h", "dur.h": "{h} h {m} min", "dur.m": "{m} min", "dur.s": "{s} s",
  "cd.left": "{d} left", "cd.over": "{d} overdue",
  "login.title": "Log in", "login.user": "User name", "login.password": "Password", "login.submit": "Log in",
  "login.as": "Logged in as {name}.", "login.continue": "Continue",
  "pw.title": "Change your password", "pw.why": "First login or a reset password: choose your own new password.",
  "pw.current": "Current password", "pw.new": "New password", "pw.repeat": "New password again",
  "pw.submit": "Save the new password", "pw.mismatch": "The two new passwords differ.",
  "mgr.title": "Service commitments", "mgr.commitments": "Commitments", "mgr.intact": "Intact rates (daily, this month)",
  "mgr.tickets": "Open tickets", "mgr.facilities": "Facilities now", "mgr.patrols": "Today's patrols",
  "mgr.callbacks": "Callbacks due", "mgr.report": "Monthly notice", "mgr.month": "Month", "mgr.report_lang": "Language",
  "mgr.open_report": "Open the printable notice", "mgr.to_queue": "Open the repair queue", "mgr.to_assets": "Assets and devices",
  "mgr.to_callbacks": "Make the calls",
  "met.met": "met", "met.missed": "not met", "met.none": "no data",
  "fc.can": "can still absorb {h} h of faults this month", "fc.cannot": "cannot meet the target this month",
  "fc.best": "best case",
  "sla.on_time": "on time", "sla.at_risk": "at risk", "sla.overdue": "overdue", "tickets.live": "total",
  "prio.emergency": "emergency", "prio.urgent": "urgent", "prio.general": "general",
  "cat.lighting": "Lighting", "cat.fire": "Fire", "cat.drainage": "Drainage",
  "state.intact": "intact", "state.faulty": "faulty", "state.unknown": "unknown",
  "visit.on_time": "on time", "visit.early": "early", "visit.late": "late", "visit.out_of_order": "out of order",
  "visit.missed": "missed", "visit.pending": "to do",
  "round.due": "not started", "round.started": "under way", "round.closed": "done", "round.missed": "missed",
  "round.due_at": "due", "rounds.none": "No rounds planned",
  "mt.title": "Repair tickets", "mt.which": "Which tickets", "mt.mine": "Mine and unclaimed", "mt.all": "All live tickets",
  "mt.by_deadline": "by deadline", "mt.count": "{n} tickets", "mt.none": "No live tickets.",
  "mt.none_mine": "Nothing waiting for you.", "mt.more": "Location and readings", "mt.callbacks": "Callbacks due",
  "st.open": "new", "st.acknowledged": "acknowledged", "st.on_site": "on site", "st.resolved": "to confirm",
  "st.closed": "closed", "st.cancelled": "cancelled",
  "clock.respond": "respond", "clock.arrive": "arrive", "clock.resolve": "resolve",
  "cs.on_time": "on time", "cs.at_risk": "at risk", "cs.overdue": "overdue", "cs.met": "met", "cs.missed": "missed",
  "due.respond": "respond by", "due.arrive": "on site by", "due.resolve": "resolve by",
  "act.acknowledge": "Acknowledge", "act.arrive": "I am on site", "act.resolve": "Repaired",
  "done.acknowledge": "Ticket #{id} acknowledged", "done.arrive": "Ticket #{id}: on site", "done.resolve": "Ticket #{id}: repaired",
  "asset.location": "Location", "readings.title": "Readings, last 24 h", "readings.none": "No readings in the last {h} h",
  "cb.due": "Call by", "cb.channel": "Channel", "cb.score": "Satisfaction", "cb.save": "Record the callback",
  "cb.none": "No callbacks due.", "cb.saved": "Callback for ticket #{id} recorded",
  "ch.phone": "phone", "ch.visit": "visit", "ch.wechat": "WeChat", "ch.sms": "SMS", "ch.other": "other",
  "score.5": "very satisfied", "score.4": "satisfied", "score.3": "neutral", "score.2": "dissatisfied",
  "score.1": "very dissatisfied",
  "gd.title": "Patrol", "gd.current": "Current round", "gd.tap": "Check in", "gd.scan": "Scan NFC tag",
  "gd.scanning": "Hold the phone to the checkpoint's tag…", "gd.nfc_error": "NFC failed: type the tag in.",
  "gd.pick": "Checkpoint", "gd.pick_none": "— pick one to fill in its tag —", "gd.tag": "Tag",
  "gd.tag_hint": "e.g. 04A224B2C15E80", "gd.record": "Record the tap", "gd.recorded": "✓ {name} recorded",
  "gd.unknown": "Unknown tag {tag}", "gd.next": "Next checkpoint", "gd.progress": "{done} of {n} checkpoints visited",
  "gd.all_done": "Every checkpoint of this round visited ✓", "gd.no_next": "No checkpoint left in this round",
  "gd.today": "Today's rounds", "gd.report": "Report a problem", "gd.p_title": "Problem",
  "gd.p_title_hint": "e.g. stair light out in building 3", "gd.p_asset": "Asset id (optional)", "gd.p_photo": "Photo",
  "gd.p_send": "Report", "gd.reported": "Reported: ticket #{id}", "gd.bad_photo": "This photo cannot be read",
  "gd.photo_n": "Photo {n}",
  "as.title": "Assets and devices", "as.assets": "Assets", "as.none": "No asset matches.", "as.kind": "Kind",
  "as.device": "Device", "as.faults": "Faults", "as.cause": "Cause", "as.history": "State history (30 days)",
  "as.unbound": "Unbound devices",
  "as.unbound_hint": "These devices send readings but no asset of the site file is bound to them. Add the snippet to the site file, fill in the id, then reload.",
  "as.none_unbound": "Every device is bound.", "as.last_seen": "last seen", "as.snippet_id": "the asset's id",
  "as.reload": "Reload the site file", "as.reloaded": "Site file reloaded: {assets} assets, {checkpoints} checkpoints",
  "as.dead": "Refused messages", "as.reason": "Reason", "as.source": "Source", "as.payload": "Payload",
  "as.older": "Older", "as.none_dead": "No refused messages.",
  "field.on": "Lamp on", "field.current_a": "Current (A)", "field.voltage_v": "Voltage (V)", "field.power_w": "Power (W)",
  "field.lux": "Light (lx)", "field.pressure_mpa": "Pressure (MPa)", "field.present": "On its bracket",
  "field.alarm": "Alarm", "field.battery_pct": "Battery (%)", "field.tamper": "Tamper", "field.level_m": "Water level (m)",
  "field.cover_tilt_deg": "Cover tilt (°)", "field.cover_open": "Cover open", "field.rssi_dbm": "Signal (dBm)",
};

const DICT = { zh, en };

export function lang() {
  try {
    return localStorage.getItem("lang") === "en" ? "en" : "zh";
  } catch (err) {
    return "zh";
  }
}

export function setLang(value) {
  try {
    localStorage.setItem("lang", value);
  } catch (err) {
    // private mode: the choice lasts for this page only
  }
}

/** The text of `key` in the chosen language, with {name} placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = DICT[lang()][key] ?? zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, k) => (vars[k] !== undefined ? String(vars[k]) : m));
}

/** Translate the static texts of `root` and set the document's language. */
export function applyI18n(root) {
  document.documentElement.lang = lang() === "zh" ? "zh-CN" : "en";
  for (const e of root.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of root.querySelectorAll("[data-i18n-placeholder]")) e.placeholder = t(e.dataset.i18nPlaceholder);
  for (const e of root.querySelectorAll("[data-i18n-label]")) e.setAttribute("aria-label", t(e.dataset.i18nLabel));
}
