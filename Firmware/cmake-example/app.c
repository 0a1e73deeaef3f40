/* The smallest useful firmware: check the packed model, bind a session to a static arena sized by
 * the generated macro, classify one input and print the logits. Uses the mps2-an386 board port.
 * (make cmake-example compares the logits with the NumPy reference's on the same input.) */
#include <stdint.h>

#include "board.h"
#include "csd.h"
#include "fmnist_tiny.h"
#include "fmt.h"

CSD_ALIGN16 static uint8_t arena[fmnist_tiny_ARENA_BYTES_FUSED];
static uint8_t image[fmnist_tiny_INPUT_BYTES];  /* a real application fills this from its sensor */

int main(void) {
    board_init();
    for (unsigned i = 0; i < sizeof image; i++) {
        unsigned column = i % fmnist_tiny_INPUT_WIDTH;
        image[i] = (uint8_t)((column > 8 && column < 20) ? 200 : 0);
    }
    csd_session_t session;
    int32_t logits[fmnist_tiny_CLASSES];
    int32_t status = csd_session_init(&session, fmnist_tiny, fmnist_tiny_size, arena, sizeof arena, CSD_MODE_FUSED);
    if (status == CSD_OK) status = csd_session_run(&session, image, sizeof image, logits, fmnist_tiny_CLASSES);
    if (status != CSD_OK) {
        put_str("error: ");
        put_str(csd_status_str(status));
        put_nl();
        board_exit(1);
    }
    unsigned best = 0;
    put_str("logits");
    for (unsigned i = 0; i < fmnist_tiny_CLASSES; i++) {
        put_str(" ");
        put_i32(logits[i]);
        if (logits[i] > logits[best]) best = i;
    }
    put_nl();
    put_kv("class", (uint32_t)best);
    put_nl();
    board_exit(0);
}
