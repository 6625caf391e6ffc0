import Foundation

/// Reasons, states and comments in the marketplaces' own languages.
enum StockTexts {
    /// Ozon cancellation reasons (id, Russian name), as buyers choose them.
    static let ozonReasons: [(id: Int64, name: String)] = [
        (352, "Покупатель передумал"),
        (401, "Нашёл товар дешевле"),
        (402, "Изменился адрес доставки"),
        (403, "Заказал другой товар"),
        (506, "Долгая доставка"),
        (507, "Ошибся при оформлении заказа"),
    ]
    /// Reasons when Ozon, the system or delivery started the cancellation.
    static let ozonServiceReasons: [String: (id: Int64, name: String)] = [
        "OZON": (690, "Отмена по решению Ozon"),
        "SYSTEM": (691, "Истёк срок оплаты заказа"),
        "DELIVERY": (692, "Служба доставки не может доставить заказ"),
        "SELLER": (693, "Нет товара в наличии"),
    ]
    static let ozonReasonMessages = [
        "", "Передумал, извините", "Нашёл дешевле в другом магазине", "Слишком долго ждать", "Оформил по ошибке",
    ]
    static let ozonApprovedComment = "Отмена подтверждена продавцом"
    static let ozonRejectedComment = "Заказ уже передан в службу доставки"

    static func ozonState(_ state: String) -> (id: Int64, name: String) {
        switch state {
        case "APPROVED": return (2, "Подтверждена")
        case "REJECTED": return (3, "Отклонена")
        default: return (1, "На согласовании")
        }
    }

    static let redReasons = [
        "用户不想要了", "拍错了/多拍了", "地址信息填写错误", "商品信息填写错误", "协商一致退款", "发货太慢",
    ]
    static let redCanceledReason = "同意取消"
    static let redRefusedReason = "拒绝取消,理由:已经打包进入发货阶段"
    static let redAutoCanceledReason = "超时未审核,系统自动同意取消"
}
